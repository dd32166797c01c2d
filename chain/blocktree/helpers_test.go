package blocktree_test

import (
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/blocktree"
	"github.com/p2pnode/p2pnode/chain/chaintest"
)

// newBuilder returns a builder of small blocks over 4 validators.
func newBuilder(seed uint64) *chaintest.Builder {
	v := chaintest.NewValidators(seed, 4)
	return chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 1, TxSize: 16, Seed: seed})
}

// genesisRoot returns the root of a fresh node: genesis, certified and
// committed by the genesis QC.
func genesisRoot(b *chaintest.Builder) blocktree.Root {
	g := b.Genesis()
	return blocktree.Root{Block: g.Block, Info: g.Info, QC: g.QC, LedgerInfo: g.QC}
}

// mustNew returns a tree rooted at root.
func mustNew(tb testing.TB, root blocktree.Root) *blocktree.Tree {
	tb.Helper()
	tr, err := blocktree.New(root)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return tr
}

// insertAll inserts each node's block, then its QC.
func insertAll(tb testing.TB, tr *blocktree.Tree, nodes ...*chaintest.Node) {
	tb.Helper()
	for _, n := range nodes {
		if err := tr.InsertBlock(n.Block, n.Info); err != nil {
			tb.Fatalf("InsertBlock(%s): %v", n.Block, err)
		}
		if err := tr.InsertQC(n.QC); err != nil {
			tb.Fatalf("InsertQC(%s): %v", n.Block, err)
		}
	}
}

// commitCert returns a commit certificate for n. It carries no signatures:
// the tree never checks them.
func commitCert(n *chaintest.Node) chain.QuorumCert {
	return chain.QuorumCert{SignedLedgerInfo: chain.LedgerInfoWithSignatures{
		LedgerInfo: chain.LedgerInfo{CommitInfo: n.Info},
	}}
}

// changedState returns info with another executed state.
func changedState(info chain.BlockInfo) chain.BlockInfo {
	info.ExecutedStateID[0] ^= 0xff
	info.Version++
	return info
}

// snapshot is what a caller can observe of a tree, for unchanged-state
// checks.
type snapshot struct {
	len           int
	root          chain.Hash
	rootLI        chain.Hash
	highestQC     chain.Hash
	highestBlock  chain.Hash
	highestCommit chain.Hash
	exists        map[chain.Hash]bool
}

func snap(tr *blocktree.Tree, ids []chain.Hash) snapshot {
	r := tr.Root()
	hqc, hcc := tr.HighestQC(), tr.HighestCommitCert()
	hb, _ := tr.HighestCertifiedBlock()
	s := snapshot{
		len: tr.Len(), root: r.Block.ID, rootLI: r.LedgerInfo.Hash(),
		highestQC: hqc.Hash(), highestBlock: hb.ID, highestCommit: hcc.Hash(),
		exists: map[chain.Hash]bool{},
	}
	for _, id := range ids {
		s.exists[id] = tr.Exists(id)
	}
	return s
}

func (s snapshot) equal(o snapshot) bool {
	if s.len != o.len || s.root != o.root || s.rootLI != o.rootLI || s.highestQC != o.highestQC ||
		s.highestBlock != o.highestBlock || s.highestCommit != o.highestCommit || len(s.exists) != len(o.exists) {
		return false
	}
	for id, e := range s.exists {
		if o.exists[id] != e {
			return false
		}
	}
	return true
}

func ids(nodes []*chaintest.Node) []chain.Hash {
	out := make([]chain.Hash, len(nodes))
	for i, n := range nodes {
		out[i] = n.Block.ID
	}
	return out
}
