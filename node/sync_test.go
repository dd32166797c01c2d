package node_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/blockstore"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/node"
	"github.com/p2pnode/p2pnode/protocol"
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
			if tt.wantFF && st.Snapshots == 0 {
				t.Fatal("the fast-forward restored no snapshot")
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
	// Replay: the persisted 3-chain is old, and the server, which caught
	// up by sync, keeps no state tree of its version to snapshot.
	ccfg.Syncer.SnapshotSync = false
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

// TestPrunedAndFullServers: a node that keeps 200 versions of history and
// one that keeps all serve side by side; a fresh node catches up from both,
// by a forward fetch and by state sync, to the full history, while the
// pruned one reads its whole state and answers pruned below its window.
func TestPrunedAndFullServers(t *testing.T) {
	v := chaintest.NewValidators(27, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 3, TxSize: 40, Seed: 27})
	blocks := b.Extend(b.Genesis(), 300)
	full := startServer(t, v.Genesis, blocks, nil)
	pruned := start(t, func() node.Config {
		cfg := testConfig(t, "pruned", v.Genesis, chaintest.Key(fullNodeSeed, 2))
		cfg.PruneWindow, cfg.PruneInterval = 200, 10*time.Millisecond
		preload(t, cfg.Home, v.Genesis, blocks)
		return cfg
	}())
	waitFor(t, "the pruned node to prune", func() bool { return pruned.Status().EarliestVersion > 0 })
	ps := pruned.Status()
	if ps.EarliestVersion < ps.CommittedVersion-200-64*3 || ps.EarliestVersion > ps.CommittedVersion-200 {
		t.Fatalf("pruned node keeps versions from %d of %d, want about the last 200", ps.EarliestVersion, ps.CommittedVersion)
	}
	if fs := full.Status(); fs.EarliestVersion != 0 || fs.EarliestRound != 1 {
		t.Fatalf("full node keeps versions from %d, rounds from %d", fs.EarliestVersion, fs.EarliestRound)
	}
	first := blocks[0].Block.Payload()[0]
	key, val, err := chain.DecodeKV(first)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok, err := pruned.Store().Ledger().Get(key); err != nil || !ok || string(got) != string(val) {
		t.Fatalf("pruned node's state of the first key: %x, %v, %v", got, ok, err)
	}
	// Below its window the pruned node answers pruned.
	raw := newRawHost(t)
	connect(t, raw, pruned.Host())
	netw := node.NewNetwork(raw, v.Genesis.ChainID)
	resp, err := netw.RequestChunk(t.Context(), pruned.ID(), protocol.ChunkRequest{StartVersion: 0, TargetVersion: ps.CommittedVersion, MaxTxs: 10})
	if err != nil || resp.Status != protocol.StatusPruned {
		t.Fatalf("chunk from version 0 of the pruned node: %v, %v; want pruned", resp, err)
	}

	for _, tt := range []struct {
		name        string
		fastForward uint64
		snapshot    bool
	}{
		{"forward fetch", 1 << 30, false},
		{"state sync", 20, false},
		{"snapshot sync", 20, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, "client", v.Genesis, chaintest.Key(fullNodeSeed, 3))
			cfg.Bootstrap = addrInfos(pruned, full)
			cfg.Syncer.FastForwardRounds = tt.fastForward
			cfg.Syncer.SnapshotSync = tt.snapshot
			client := start(t, cfg)
			want := full.Status()
			waitFor(t, "client to catch up", func() bool {
				s := client.Status()
				return s.CommittedRound == want.CommittedRound
			})
			if got, ok, err := client.Store().Ledger().Get(key); err != nil || !ok || string(got) != string(val) {
				t.Fatalf("client's state of the first key: %x, %v, %v", got, ok, err)
			}
			s, st := client.Status(), client.SyncStats()
			switch {
			case tt.snapshot && (st.Snapshots != 1 || s.EarliestVersion == 0 || s.StateTreeVersion < s.EarliestVersion):
				t.Fatalf("status %+v, stats %+v: want one snapshot, no history below it, the state tree from it on", s, st)
			case !tt.snapshot && s.EarliestVersion != 0:
				t.Fatalf("client keeps versions from %d, want the whole history", s.EarliestVersion)
			case (tt.fastForward == 20) != (st.FastForwards > 0):
				t.Fatalf("stats %+v: want a fast-forward only for state and snapshot sync", st)
			}
		})
	}
}
