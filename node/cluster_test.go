package node_test

import (
	"testing"
	"time"

	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/node"
)

// TestValidatorsCommitAndFullNodeFollows runs 4 validators and a full node
// on loopback: the validators commit blocks holding the load generator's
// transactions, the full node follows through gossip and sync, and all
// share one committed prefix.
func TestValidatorsCommitAndFullNodeFollows(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 5-node network")
	}
	const target = 12 // committed round every node must reach
	v := chaintest.NewValidators(51, 4)
	var nodes []*node.Node
	for i, key := range v.Keys {
		cfg := testConfig(t, "validator", v.Genesis, key)
		cfg.Consensus.RoundTimeout = 300 * time.Millisecond
		cfg.Consensus.MaxRoundTimeout = 2 * time.Second
		cfg.Bootstrap = addrInfos(nodes...)
		if i == 0 {
			cfg.TxRate = 100
		}
		nodes = append(nodes, start(t, cfg))
	}
	fcfg := testConfig(t, "fullnode", v.Genesis, chaintest.Key(fullNodeSeed, 0))
	fcfg.Bootstrap = addrInfos(nodes...)
	full := start(t, fcfg)

	for _, n := range nodes {
		if s := n.Status(); s.Role != "validator" || s.Consensus == nil {
			t.Fatalf("%s: role %q, consensus %v; want a validator", s.PeerID, s.Role, s.Consensus)
		}
	}
	if s := full.Status(); s.Role != "fullnode" {
		t.Fatalf("full node's role is %q", s.Role)
	}
	all := append(nodes[:len(nodes):len(nodes)], full)
	waitFor(t, "every node to commit", func() bool {
		for _, n := range all {
			if n.Status().CommittedRound < target {
				return false
			}
		}
		return true
	})
	waitFor(t, "transactions to commit", func() bool { return full.Status().CommittedVersion > 0 })

	for _, n := range all {
		s := n.Status()
		t.Logf("%s %s: round %d, committed round %d, version %d, synced %+v", s.Role, s.PeerID, s.Round, s.CommittedRound, s.CommittedVersion, n.SyncStats())
	}

	// One committed prefix: every node's blocks agree with the first
	// validator's, round by round.
	ref := committedByRound(t, nodes[0])
	for _, n := range all[1:] {
		for r, id := range committedByRound(t, n) {
			if want, ok := ref[r]; ok && want != id {
				t.Fatalf("%s committed %s at round %d, validator 0 committed %s", n.ID(), id, r, want)
			}
		}
	}
}

func committedByRound(t testing.TB, n *node.Node) map[uint64]string {
	t.Helper()
	cbs, err := n.Store().Ledger().BlocksFrom(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[uint64]string, len(cbs))
	for _, cb := range cbs {
		out[cb.Info.Round] = cb.Info.ID.String()
	}
	return out
}
