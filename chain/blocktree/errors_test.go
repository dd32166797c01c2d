package blocktree_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/blocktree"
	"github.com/p2pnode/p2pnode/chain/chaintest"
)

// fixture is genesis ← n[0] ← … ← n[5] in rounds 1…6; the QC of n[i]
// commits n[i-2].
type fixture struct {
	b *chaintest.Builder
	v *chaintest.Validators
	n []*chaintest.Node
}

func newFixture() *fixture {
	b := newBuilder(1)
	return &fixture{b: b, v: b.V, n: b.Extend(b.Genesis(), 6)}
}

// genesisTree holds genesis and n[0], n[1], n[2] with their QCs.
func (f *fixture) genesisTree(tb testing.TB) *blocktree.Tree {
	tr := mustNew(tb, genesisRoot(f.b))
	insertAll(tb, tr, f.n[:3]...)
	return tr
}

// rootAt1 is n[1] committed by the QC of n[3].
func (f *fixture) rootAt1() blocktree.Root {
	return blocktree.Root{Block: f.n[1].Block, Info: f.n[1].Info, QC: f.n[1].QC, LedgerInfo: f.n[3].QC}
}

// prunedTree is rooted at n[1] and holds n[2] with its QC.
func (f *fixture) prunedTree(tb testing.TB) *blocktree.Tree {
	tr := mustNew(tb, f.rootAt1())
	insertAll(tb, tr, f.n[2])
	return tr
}

// proposal returns a block of round on top of the block qc certifies, and
// its info.
func (f *fixture) proposal(round uint64, qc chain.QuorumCert) (*chain.Block, chain.BlockInfo) {
	ts := qc.CertifiedBlock().TimestampUsecs + 1000
	blk := chain.NewProposal(f.v.Leader(round), round, ts, qc, nil)
	return blk, blk.Info(qc.CertifiedBlock().ExecutedStateID, qc.CertifiedBlock().StateRoot, qc.CertifiedBlock().Version)
}

// resealed returns a copy of qc changed by change and signed again.
func (f *fixture) resealed(qc chain.QuorumCert, change func(*chain.QuorumCert)) chain.QuorumCert {
	c := chaintest.CloneQC(&qc)
	change(c)
	f.v.ResealQC(c)
	return *c
}

// checkErr checks err against wantErr (nil: no error) and every non-nil
// error of also.
func checkErr(t *testing.T, err, wantErr error, also ...error) {
	t.Helper()
	if wantErr == nil {
		if err != nil {
			t.Errorf("err = %v, want nil", err)
		}
		return
	}
	for _, want := range append([]error{wantErr}, also...) {
		if want != nil && !errors.Is(err, want) {
			t.Errorf("err = %v, want %v", err, want)
		}
	}
}

func TestNewErrors(t *testing.T) {
	f := newFixture()
	good := f.rootAt1()
	with := func(change func(*blocktree.Root)) blocktree.Root {
		r := good
		change(&r)
		return r
	}
	tests := []struct {
		name     string
		root     blocktree.Root
		wantErr  error
		wantAlso error
	}{
		{name: "genesis", root: genesisRoot(f.b)},
		{name: "committed block", root: good},
		{name: "nil block", root: with(func(r *blocktree.Root) { r.Block = nil }), wantErr: blocktree.ErrBadRoot},
		{name: "info of another block", root: with(func(r *blocktree.Root) { r.Info = f.n[2].Info }),
			wantErr: blocktree.ErrBadRoot, wantAlso: blocktree.ErrBadBlock},
		{name: "QC certifies another block", root: with(func(r *blocktree.Root) { r.QC = f.n[2].QC }),
			wantErr: blocktree.ErrBadRoot},
		{name: "QC certifies another state", root: with(func(r *blocktree.Root) { r.Info = changedState(r.Info) }),
			wantErr: blocktree.ErrBadRoot},
		{name: "ledger info commits another block", root: with(func(r *blocktree.Root) { r.LedgerInfo = f.n[4].QC }),
			wantErr: blocktree.ErrBadRoot},
		{name: "ledger info commits nothing", root: with(func(r *blocktree.Root) { r.LedgerInfo = f.n[1].QC }),
			wantErr: blocktree.ErrBadRoot},
		{name: "ledger info commits another state", root: with(func(r *blocktree.Root) {
			r.LedgerInfo = f.resealed(f.n[3].QC, func(qc *chain.QuorumCert) {
				li := &qc.SignedLedgerInfo.LedgerInfo
				li.CommitInfo = changedState(li.CommitInfo)
			})
		}), wantErr: blocktree.ErrBadRoot, wantAlso: blocktree.ErrStateMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := blocktree.New(tt.root)
			checkErr(t, err, tt.wantErr, tt.wantAlso)
			if err == nil && (tr.Len() != 1 || tr.Root().Block.ID != tt.root.Block.ID) {
				t.Errorf("Len = %d, root = %s; want 1, %s", tr.Len(), tr.Root().Block, tt.root.Block)
			}
		})
	}
}

func TestInsertBlockErrors(t *testing.T) {
	f := newFixture()
	stateParent := f.resealed(f.n[2].QC, func(qc *chain.QuorumCert) {
		qc.VoteData.Proposed = changedState(qc.VoteData.Proposed)
	})
	roundParent := f.resealed(f.n[2].QC, func(qc *chain.QuorumCert) { qc.VoteData.Proposed.Round = 9 })
	badState, badStateInfo := f.proposal(4, stateParent)
	badRound, badRoundInfo := f.proposal(4, roundParent)
	sameRound, sameRoundInfo := f.proposal(3, f.n[2].QC)
	stale := f.b.Child(f.n[0], 7) // a fork off n[0], below rootAt1
	fork := f.b.Child(f.b.Genesis(), 7)

	tests := []struct {
		name     string
		tree     func(testing.TB) *blocktree.Tree
		block    *chain.Block
		info     chain.BlockInfo
		wantErr  error
		wantAlso error
	}{
		{name: "child", block: f.n[3].Block, info: f.n[3].Info},
		{name: "fork on genesis", block: fork.Block, info: fork.Info},
		{name: "identical again", block: f.n[2].Block, info: f.n[2].Info},
		{name: "root again", block: f.b.Genesis().Block, info: f.b.Genesis().Info},
		{name: "nil block", info: f.n[3].Info, wantErr: blocktree.ErrBadBlock},
		{name: "info of another block", block: f.n[3].Block, info: f.n[4].Info, wantErr: blocktree.ErrBadBlock},
		{name: "info with another round", block: f.n[3].Block, wantErr: blocktree.ErrBadBlock,
			info: func() chain.BlockInfo { i := f.n[3].Info; i.Round++; return i }()},
		{name: "conflict", block: f.n[2].Block, info: changedState(f.n[2].Info), wantErr: blocktree.ErrConflict},
		{name: "root with another state", block: f.b.Genesis().Block, info: changedState(f.b.Genesis().Info),
			wantErr: blocktree.ErrConflict},
		{name: "missing parent", block: f.n[4].Block, info: f.n[4].Info, wantErr: blocktree.ErrMissingParent},
		{name: "parent certified to another state", block: badState, info: badStateInfo,
			wantErr: blocktree.ErrParentMismatch, wantAlso: blocktree.ErrStateMismatch},
		{name: "parent certified at another round", block: badRound, info: badRoundInfo,
			wantErr: blocktree.ErrParentMismatch},
		{name: "round not above parent", block: sameRound, info: sameRoundInfo, wantErr: blocktree.ErrParentMismatch},
		{name: "below root", tree: f.prunedTree, block: f.n[0].Block, info: f.n[0].Info, wantErr: blocktree.ErrBelowRoot},
		{name: "genesis below root", tree: f.prunedTree, block: f.b.Genesis().Block, info: f.b.Genesis().Info,
			wantErr: blocktree.ErrBelowRoot},
		{name: "parent below root", tree: f.prunedTree, block: stale.Block, info: stale.Info,
			wantErr: blocktree.ErrBelowRoot},
		{name: "after pruned root", tree: f.prunedTree, block: f.n[3].Block, info: f.n[3].Info},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mk := tt.tree
			if mk == nil {
				mk = f.genesisTree
			}
			tr := mk(t)
			before := tr.Len()
			err := tr.InsertBlock(tt.block, tt.info)
			checkErr(t, err, tt.wantErr, tt.wantAlso)
			switch {
			case err != nil && tr.Len() != before:
				t.Errorf("Len = %d after a failed insert, want %d", tr.Len(), before)
			case err == nil:
				blk, info, ok := tr.Block(tt.block.ID)
				if !ok || blk.ID != tt.block.ID || info != tt.info {
					t.Errorf("Block(%s) = %v, %v, %v after insert", tt.block.ID.Short(), blk, info, ok)
				}
			}
		})
	}
}

func TestInsertQCErrors(t *testing.T) {
	f := newFixture()
	otherState := f.resealed(f.n[2].QC, func(qc *chain.QuorumCert) {
		qc.VoteData.Proposed = changedState(qc.VoteData.Proposed)
	})
	otherCommit := f.resealed(f.n[2].QC, func(qc *chain.QuorumCert) {
		li := &qc.SignedLedgerInfo.LedgerInfo
		li.CommitInfo = changedState(li.CommitInfo)
	})
	unknownCommit := f.resealed(f.n[2].QC, func(qc *chain.QuorumCert) {
		qc.SignedLedgerInfo.LedgerInfo.CommitInfo = chain.BlockInfo{Round: 2, ID: chain.Hash{1}}
	})
	second := *chaintest.CloneQC(&f.n[2].QC)
	second.SignedLedgerInfo = f.v.SignLedgerInfo(second.SignedLedgerInfo.LedgerInfo, f.v.Quorum())

	tests := []struct {
		name    string
		tree    func(testing.TB) *blocktree.Tree
		qc      chain.QuorumCert
		wantErr error
	}{
		{name: "again", qc: f.n[2].QC},
		{name: "second QC for a block", qc: second},
		{name: "root QC", qc: f.b.Genesis().QC},
		{name: "commits a block not in the tree", qc: unknownCommit}, // not a commit cert of this tree
		{name: "missing block", qc: f.n[4].QC, wantErr: blocktree.ErrMissingBlock},
		{name: "below root", tree: f.prunedTree, qc: f.n[0].QC, wantErr: blocktree.ErrBelowRoot},
		{name: "certifies another state", qc: otherState, wantErr: blocktree.ErrStateMismatch},
		{name: "commits another state", qc: otherCommit, wantErr: blocktree.ErrStateMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mk := tt.tree
			if mk == nil {
				mk = f.genesisTree
			}
			tr := mk(t)
			before := snap(tr, nil)
			id := tt.qc.CertifiedBlock().ID
			stored, _ := tr.QC(id)
			err := tr.InsertQC(tt.qc)
			checkErr(t, err, tt.wantErr)
			if !before.equal(snap(tr, nil)) {
				t.Errorf("tree changed by InsertQC")
			}
			if got, _ := tr.QC(id); !reflect.DeepEqual(got, stored) {
				t.Errorf("QC(%s) changed: the first QC must win", id.Short())
			}
		})
	}
}

func TestPruneErrors(t *testing.T) {
	f := newFixture()
	noQC := func(tb testing.TB) *blocktree.Tree {
		tr := f.genesisTree(tb)
		if err := tr.InsertBlock(f.n[3].Block, f.n[3].Info); err != nil {
			tb.Fatal(err)
		}
		return tr
	}
	otherState := f.resealed(f.n[2].QC, func(qc *chain.QuorumCert) {
		li := &qc.SignedLedgerInfo.LedgerInfo
		li.CommitInfo = changedState(li.CommitInfo)
	})
	tests := []struct {
		name     string
		tree     func(testing.TB) *blocktree.Tree
		newRoot  chain.Hash
		li       chain.QuorumCert
		wantErr  error
		wantAlso error
		wantLen  int
	}{
		{name: "committed block", newRoot: f.n[0].Block.ID, li: f.n[2].QC, wantLen: 3},
		{name: "current root", newRoot: f.b.Genesis().Block.ID, li: f.b.Genesis().QC, wantLen: 4},
		{name: "not in tree", newRoot: f.n[4].Block.ID, li: f.n[4].QC, wantErr: blocktree.ErrNotDescendant},
		{name: "pruned", tree: f.prunedTree, newRoot: f.n[0].Block.ID, li: f.n[2].QC, wantErr: blocktree.ErrNotDescendant},
		{name: "no QC", tree: noQC, newRoot: f.n[3].Block.ID, li: commitCert(f.n[3]), wantErr: blocktree.ErrBadRoot},
		{name: "ledger info commits another block", newRoot: f.n[1].Block.ID, li: f.n[2].QC, wantErr: blocktree.ErrBadRoot},
		{name: "ledger info commits another state", newRoot: f.n[0].Block.ID, li: otherState,
			wantErr: blocktree.ErrBadRoot, wantAlso: blocktree.ErrStateMismatch},
	}
	all := append(ids(f.n), f.b.Genesis().Block.ID)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mk := tt.tree
			if mk == nil {
				mk = f.genesisTree
			}
			tr := mk(t)
			before := snap(tr, all)
			_, err := tr.Prune(tt.newRoot, tt.li)
			checkErr(t, err, tt.wantErr, tt.wantAlso)
			if err != nil && !before.equal(snap(tr, all)) {
				t.Errorf("tree changed by a failed Prune")
			}
			if err == nil && (tr.Len() != tt.wantLen || tr.Root().Block.ID != tt.newRoot) {
				t.Errorf("Len = %d, root %s; want %d, %s", tr.Len(), tr.Root().Block.ID.Short(), tt.wantLen, tt.newRoot.Short())
			}
		})
	}
}

func TestBlocksToCommit(t *testing.T) {
	f := newFixture()
	tr := f.genesisTree(t)
	tests := []struct {
		name    string
		id      chain.Hash
		want    []*chain.Block
		wantErr error
	}{
		{name: "child of root", id: f.n[0].Block.ID, want: chaintest.Blocks(f.n[:1])},
		{name: "deeper", id: f.n[2].Block.ID, want: chaintest.Blocks(f.n[:3])},
		{name: "root", id: f.b.Genesis().Block.ID, wantErr: blocktree.ErrNotDescendant},
		{name: "unknown", id: f.n[5].Block.ID, wantErr: blocktree.ErrNotDescendant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tr.BlocksToCommit(tt.id)
			checkErr(t, err, tt.wantErr)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("BlocksToCommit = %v, want %v", got, tt.want)
			}
		})
	}
}
