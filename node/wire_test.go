package node_test

import (
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/node"
	"github.com/p2pnode/p2pnode/protocol"
)

// wireServer is a running full node holding a chain of n blocks (rounds
// 1 to n; the QC of the last commits round n-2), and a client network to it.
func wireServer(t *testing.T, n int) (*node.Node, *node.Network, *chain.Genesis, []*chaintest.Node) {
	t.Helper()
	v := chaintest.NewValidators(71, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 1, TxSize: 20})
	blocks := b.Extend(b.Genesis(), n)
	cfg := testConfig(t, "server", v.Genesis, chaintest.Key(fullNodeSeed, 0))
	preload(t, cfg.Home, v.Genesis, blocks)
	srv := start(t, cfg)
	client := newRawHost(t)
	connect(t, client, srv.Host())
	return srv, node.NewNetwork(client, v.Genesis.ChainID), v.Genesis, blocks
}

// TestServeGenesisAndRoundZero pins docs/protocol.md section 7.4: the
// genesis block is served by block retrieval like any block, whatever the
// server has pruned, and is never part of a committed range, so that a
// range from round 0 starts at round 1.
func TestServeGenesisAndRoundZero(t *testing.T) {
	srv, net, g, blocks := wireServer(t, 6)
	if r := srv.Status().CommittedRound; r != 4 {
		t.Fatalf("server committed round %d, want 4", r)
	}
	gb := g.Block()
	ids := func(bs []*chain.Block) []chain.Hash {
		var out []chain.Hash
		for _, b := range bs {
			out = append(out, b.ID)
		}
		return out
	}
	blockTests := []struct {
		name       string
		req        protocol.BlockRequest
		wantStatus protocol.Status
		want       []chain.Hash
	}{
		{"genesis by id", protocol.BlockRequest{BlockID: gb.ID, Count: 1}, protocol.StatusSucceeded, []chain.Hash{gb.ID}},
		{"genesis by id, more asked", protocol.BlockRequest{BlockID: gb.ID, Count: 5}, protocol.StatusNotEnoughBlocks, []chain.Hash{gb.ID}},
		{"walk reaches genesis", protocol.BlockRequest{BlockID: blocks[1].Block.ID, Count: 5}, protocol.StatusNotEnoughBlocks,
			[]chain.Hash{blocks[1].Block.ID, blocks[0].Block.ID, gb.ID}},
		{"target genesis", protocol.BlockRequest{BlockID: blocks[1].Block.ID, Count: 5, Target: gb.ID}, protocol.StatusSucceededWithTarget,
			[]chain.Hash{blocks[1].Block.ID, blocks[0].Block.ID}},
	}
	for _, tt := range blockTests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := net.RequestBlocks(t.Context(), srv.ID(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(resp.Blocks); resp.Status != tt.wantStatus || !equalIDs(got, tt.want) {
				t.Fatalf("status %s, blocks %v; want %s, %v", resp.Status, got, tt.wantStatus, tt.want)
			}
		})
	}
	// The genesis block served is byte for byte the one a client computes
	// from genesis.json, and verifies only as such.
	resp, err := net.RequestBlocks(t.Context(), srv.ID(), protocol.BlockRequest{BlockID: gb.ID, Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Blocks) != 1 {
		t.Fatalf("genesis request: %d blocks", len(resp.Blocks))
	}
	got, _ := chain.Encode(resp.Blocks[0])
	want, _ := chain.Encode(gb)
	if string(got) != string(want) {
		t.Fatalf("served genesis %x, want %x", got, want)
	}

	committedTests := []struct {
		name       string
		req        protocol.CommittedRequest
		wantStatus protocol.Status
		want       []chain.Hash
	}{
		{"from round 0", protocol.CommittedRequest{FromRound: 0, ToRound: 3, MaxBlocks: 10}, protocol.StatusSucceeded,
			[]chain.Hash{blocks[0].Block.ID, blocks[1].Block.ID}},
		{"round 0 only", protocol.CommittedRequest{FromRound: 0, ToRound: 1, MaxBlocks: 10}, protocol.StatusSucceeded, nil},
		{"from round 0, one block", protocol.CommittedRequest{FromRound: 0, ToRound: 10, MaxBlocks: 1}, protocol.StatusSucceeded,
			[]chain.Hash{blocks[0].Block.ID}},
		{"past the committed chain", protocol.CommittedRequest{FromRound: 0, ToRound: 10, MaxBlocks: 10}, protocol.StatusNotEnoughBlocks,
			[]chain.Hash{blocks[0].Block.ID, blocks[1].Block.ID, blocks[2].Block.ID, blocks[3].Block.ID}},
	}
	for _, tt := range committedTests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := net.RequestCommitted(t.Context(), srv.ID(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(resp.Blocks); resp.Status != tt.wantStatus || !equalIDs(got, tt.want) {
				t.Fatalf("status %s, blocks %v; want %s, %v", resp.Status, got, tt.wantStatus, tt.want)
			}
		})
	}
}

func equalIDs(a, b []chain.Hash) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
