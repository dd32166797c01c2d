package blocktree_test

import (
	"reflect"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/blocktree"
	"github.com/p2pnode/p2pnode/chain/chaintest"
)

// threeChain returns the fast-forward pieces for the commit cert of n[i+2]:
// root (B0, C0, C2) with B0 = n[i], blocks [B2, B1] (newest first, as
// retrieved) and QCs [C2, C1, C0].
func threeChain(n []*chaintest.Node, i int) (blocktree.Root, []blocktree.ExecutedBlock, []chain.QuorumCert) {
	b0, b1, b2 := n[i], n[i+1], n[i+2]
	c2, c1, c0 := b2.QC, *b2.Block.QC(), *b1.Block.QC()
	root := blocktree.Root{Block: b0.Block, Info: b0.Info, QC: c0, LedgerInfo: c2}
	blocks := []blocktree.ExecutedBlock{{Block: b2.Block, Info: b2.Info}, {Block: b1.Block, Info: b1.Info}}
	return root, blocks, []chain.QuorumCert{c2, c1, c0}
}

// TestFastForward follows the seed's process_highest_ledger_info: a node at
// genesis with a fork learns of a commit cert C2 far ahead, rebuilds its
// tree from the committed 3-chain B0 ← B1 ← B2, and goes on inserting.
func TestFastForward(t *testing.T) {
	b := newBuilder(4)
	n := b.Extend(b.Genesis(), 12)
	fork := b.Child(n[1], 20)
	tr := mustNew(t, genesisRoot(b))
	insertAll(t, tr, n[0], n[1], fork)

	root, blocks, qcs := threeChain(n, 7)
	if !qcs[0].CommitsBlock() || qcs[0].CommitInfo() != n[7].Info {
		t.Fatalf("C2 does not commit B0: the chain is not a 3-chain")
	}
	if err := tr.Rebuild(root, blocks, qcs); err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	if tr.Len() != 3 {
		t.Errorf("Len = %d, want 3 (B0, B1, B2)", tr.Len())
	}
	for _, old := range []*chaintest.Node{b.Genesis(), n[0], n[1], fork} {
		if tr.Exists(old.Block.ID) {
			t.Errorf("%s survived the rebuild", old.Block)
		}
	}
	if got := tr.Root(); !reflect.DeepEqual(got, root) {
		t.Errorf("Root() = %+v, want %+v", got, root)
	}
	if got := tr.HighestQC(); !reflect.DeepEqual(got, n[9].QC) {
		t.Errorf("HighestQC certifies round %d, want C2 (round %d)", got.Round(), n[9].Round())
	}
	if got := tr.HighestCommitCert(); !reflect.DeepEqual(got, n[9].QC) {
		t.Errorf("HighestCommitCert commits round %d, want C2", got.CommitInfo().Round)
	}
	for i, want := range []*chaintest.Node{n[8], n[9]} {
		if qc, ok := tr.QC(want.Block.ID); !ok || !reflect.DeepEqual(qc, want.QC) {
			t.Errorf("QC(B%d) missing or wrong", i+1)
		}
	}

	// Blocks after B2 insert on top; the next commit is B1, then B2.
	insertAll(t, tr, n[10], n[11])
	if hb, _ := tr.HighestCertifiedBlock(); hb.ID != n[11].Block.ID {
		t.Errorf("highest certified block = %s, want %s", hb, n[11].Block)
	}
	cc := tr.HighestCommitCert()
	if cc.CommitInfo() != n[9].Info {
		t.Fatalf("highest commit cert commits round %d, want B2 (round %d)", cc.CommitInfo().Round, n[9].Round())
	}
	toCommit, err := tr.BlocksToCommit(cc.CommitInfo().ID)
	if err != nil || !reflect.DeepEqual(toCommit, chaintest.Blocks(n[8:10])) {
		t.Fatalf("BlocksToCommit(B2) = %v, %v; want [B1, B2]", toCommit, err)
	}
	removed, err := tr.Prune(cc.CommitInfo().ID, cc)
	if err != nil {
		t.Fatalf("Prune: %v", err)
	}
	if want := []chain.Hash{n[7].Block.ID, n[8].Block.ID}; !reflect.DeepEqual(removed, want) {
		t.Errorf("Prune removed %d blocks, want B0, B1", len(removed))
	}
	if tr.Len() != 3 || tr.Root().Block.ID != n[9].Block.ID {
		t.Errorf("after prune: Len = %d, root %s; want 3, %s", tr.Len(), tr.Root().Block, n[9].Block)
	}
}

// TestRebuildBadInput checks that a rebuild from inconsistent pieces fails
// and leaves the tree as it was.
func TestRebuildBadInput(t *testing.T) {
	b := newBuilder(5)
	n := b.Extend(b.Genesis(), 10)
	root, blocks, qcs := threeChain(n, 5)
	eb := func(nodes ...*chaintest.Node) []blocktree.ExecutedBlock {
		var out []blocktree.ExecutedBlock
		for _, x := range nodes {
			out = append(out, blocktree.ExecutedBlock{Block: x.Block, Info: x.Info})
		}
		return out
	}
	badRoot := root
	badRoot.LedgerInfo = n[6].QC // commits n[4], not B0

	tests := []struct {
		name    string
		root    blocktree.Root
		blocks  []blocktree.ExecutedBlock
		qcs     []chain.QuorumCert
		wantErr error
	}{
		{name: "good", root: root, blocks: blocks, qcs: qcs},
		{name: "bad root", root: badRoot, blocks: blocks, qcs: qcs, wantErr: blocktree.ErrBadRoot},
		{name: "nil block", root: root, blocks: append(eb(n[6]), blocktree.ExecutedBlock{}), wantErr: blocktree.ErrBadBlock},
		{name: "missing parent", root: root, blocks: eb(n[7]), wantErr: blocktree.ErrMissingParent},
		{name: "stale block", root: root, blocks: eb(n[4], n[6]), wantErr: blocktree.ErrBelowRoot},
		{name: "conflicting duplicate", root: root, wantErr: blocktree.ErrConflict,
			blocks: append(eb(n[6]), blocktree.ExecutedBlock{Block: n[6].Block, Info: changedState(n[6].Info)})},
		{name: "QC without block", root: root, blocks: eb(n[6]), qcs: qcs, wantErr: blocktree.ErrMissingBlock},
		{name: "QC of another state", root: root, blocks: blocks, wantErr: blocktree.ErrStateMismatch,
			qcs: []chain.QuorumCert{func() chain.QuorumCert {
				qc := *chaintest.CloneQC(&n[7].QC)
				qc.VoteData.Proposed = changedState(qc.VoteData.Proposed)
				return qc
			}()}},
	}
	all := append(ids(n), b.Genesis().Block.ID)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := mustNew(t, genesisRoot(b))
			insertAll(t, tr, n[:3]...)
			before := snap(tr, all)
			err := tr.Rebuild(tt.root, tt.blocks, tt.qcs)
			checkErr(t, err, tt.wantErr)
			switch after := snap(tr, all); {
			case err != nil && !before.equal(after):
				t.Errorf("a failed Rebuild changed the tree")
			case err == nil && (after.root != tt.root.Block.ID || after.len != 1+len(tt.blocks)):
				t.Errorf("after Rebuild: root %s, Len %d", after.root.Short(), after.len)
			}
		})
	}
}
