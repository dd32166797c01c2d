package node_test

import (
	"path/filepath"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/blockstore"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/node"
)

// TestFullNodeCatchesUp runs two full nodes on loopback: a server that
// holds a chain and a fresh node that bootstraps to it, learns its SyncInfo
// from gossip and syncs — block by block for a small gap, by state sync
// for a large one.
func TestFullNodeCatchesUp(t *testing.T) {
	tests := []struct {
		name        string
		blocks      int
		fastForward uint64 // the client's Syncer.FastForwardRounds
		wantFF      bool
	}{
		{name: "small gap fetches blocks", blocks: 12, fastForward: 200, wantFF: false},
		{name: "large gap fast-forwards", blocks: 60, fastForward: 5, wantFF: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := chaintest.NewValidators(21, 4)
			b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 3, TxSize: 40, Seed: 5})
			blocks := b.Extend(b.Genesis(), tt.blocks)

			server := startServer(t, v.Genesis, blocks, nil)
			want := server.Status()
			if want.CommittedRound != uint64(tt.blocks-2) {
				t.Fatalf("server committed round %d, want %d", want.CommittedRound, tt.blocks-2)
			}

			ccfg := clientConfig(t, v.Genesis, server)
			ccfg.Syncer.FastForwardRounds = tt.fastForward
			ccfg.Syncer.ChunkTxs = 16 // several chunks
			client := start(t, ccfg)

			waitFor(t, "client to catch up", func() bool {
				s := client.Status()
				return s.CommittedRound == want.CommittedRound && s.HighestQCRound == want.HighestQCRound
			})
			got := client.Status()
			if got.CommittedBlockID != want.CommittedBlockID || got.CommittedVersion != want.CommittedVersion {
				t.Fatalf("client committed %s at version %d, want %s at %d",
					got.CommittedBlockID, got.CommittedVersion, want.CommittedBlockID, want.CommittedVersion)
			}
			st := client.SyncStats()
			if gotFF := st.FastForwards > 0; gotFF != tt.wantFF {
				t.Fatalf("fast-forwards %d, want fast-forward %v", st.FastForwards, tt.wantFF)
			}
			if !tt.wantFF && st.BlocksFetched < uint64(tt.blocks) {
				t.Fatalf("blocks fetched %d, want ≥ %d", st.BlocksFetched, tt.blocks)
			}
			if tt.wantFF && st.TxsSynced == 0 {
				t.Fatal("state sync applied no transactions")
			}
		})
	}
}

// TestResumeInterruptedFastForward: a node that stopped after persisting
// the 3-chain of a fast-forward, before state sync finished, completes it
// from its peers at start-up, then follows the chain.
func TestResumeInterruptedFastForward(t *testing.T) {
	v := chaintest.NewValidators(24, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 2, TxSize: 40, Seed: 6})
	blocks := b.Extend(b.Genesis(), 30)

	server := startServer(t, v.Genesis, blocks, nil)
	ccfg := clientConfig(t, v.Genesis, server)
	ccfg.Syncer.ChunkTxs = 8
	three := blocks[20:23] // B0 ← B1 ← B2; B2's QC commits B0
	o, err := blockstore.Open(filepath.Join(ccfg.Home, node.StoreFile), v.Genesis, blockstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Blocks.SaveTree(chaintest.Blocks(three), []chain.QuorumCert{three[0].QC, three[1].QC, three[2].QC}); err != nil {
		t.Fatal(err)
	}
	o.Disk.Close()

	client := start(t, ccfg)
	want := server.Status()
	waitFor(t, "client to resume and catch up", func() bool {
		s := client.Status()
		return s.CommittedRound == want.CommittedRound && s.CommittedBlockID == want.CommittedBlockID
	})
	if st := client.SyncStats(); st.TxsSynced < three[0].Info.Version {
		t.Fatalf("state sync applied %d txs, want ≥ %d (the 3-chain's root version)", st.TxsSynced, three[0].Info.Version)
	}
}
