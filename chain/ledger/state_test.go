package ledger_test

import (
	"context"
	"errors"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/chain/ledger"
)

// TestDeferredStateSettles executes a chain as a sync does, every block
// certified by the next one's QC, commits it without computing a state
// tree, and settles: the tree then has the signed root, and blocks
// executed in full on top of it match the builder's.
func TestDeferredStateSettles(t *testing.T) {
	v := chaintest.NewValidators(81, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 20})
	nodes := b.Extend(b.Genesis(), 12)
	l, _ := newLedger(t, v.Genesis)
	if err := l.ExecuteCertifiedChain(chaintest.Blocks(nodes)); err != nil {
		t.Fatal(err)
	}
	// The last block, which no block of the chain certifies, by its own QC.
	if _, err := l.ExecuteCertified(nodes[11].Block, nodes[11].QC.CertifiedBlock()); err != nil {
		t.Fatal(err)
	}
	// nodes[11] certifies nodes[10], whose QC commits nodes[8].
	if err := l.Commit(chaintest.Blocks(nodes[:9]), nodes[10].QC.LedgerInfo()); err != nil {
		t.Fatal(err)
	}
	if l.TreeVersion() != 0 {
		t.Fatalf("tree at version %d after a deferred commit, want 0 (it follows)", l.TreeVersion())
	}
	if err := l.Settle(context.Background()); err != nil {
		t.Fatalf("Settle: %v", err)
	}
	root, err := l.StateRoot()
	if want := nodes[8].Info; err != nil || l.TreeVersion() != want.Version || root != want.StateRoot {
		t.Fatalf("after Settle: tree at %d root %s, %v; want %d %s", l.TreeVersion(), root.Short(), err, want.Version, want.StateRoot.Short())
	}
	// A block executed in full, on deferred ancestors, computes their
	// trees and its own as the builder does.
	next := b.Child(nodes[11], 13)
	info, err := l.Execute(next.Block)
	if err != nil || info != next.Info {
		t.Fatalf("Execute = %+v, %v; want %+v", info, err, next.Info)
	}
}

// TestSettleRejectsWrongRoot commits blocks whose deferred state root is
// not the one their transactions give: Settle finds it and fails with
// ErrStateRoot, and so does a block executed in full on top of them.
func TestSettleRejectsWrongRoot(t *testing.T) {
	v := chaintest.NewValidators(82, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 10})
	nodes := b.Extend(b.Genesis(), 3)
	l, _ := newLedger(t, v.Genesis)
	wrong := nodes[0].Info
	wrong.StateRoot[0] ^= 1
	info, err := l.ExecuteCertified(nodes[0].Block, wrong)
	if err != nil || info != wrong {
		t.Fatalf("ExecuteCertified = %+v, %v; want the quorum's info", info, err)
	}
	li := &chain.LedgerInfoWithSignatures{LedgerInfo: chain.LedgerInfo{CommitInfo: wrong}}
	if err := l.Commit(chaintest.Blocks(nodes[:1]), li); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Execute(nodes[1].Block); !errors.Is(err, ledger.ErrStateRoot) {
		t.Fatalf("Execute on a wrong committed root = %v, want ErrStateRoot", err)
	}
	if err := l.Settle(context.Background()); !errors.Is(err, ledger.ErrStateRoot) {
		t.Fatalf("Settle = %v, want ErrStateRoot", err)
	}
	if l.TreeVersion() != 0 {
		t.Fatalf("a tree that fails its check was stored: version %d", l.TreeVersion())
	}
}

// TestDeferredRootOfEmptyBlock: a block without transactions keeps its
// parent's state root whatever the quorum says, so a mismatch shows at
// once, in the info compared with the quorum's.
func TestDeferredRootOfEmptyBlock(t *testing.T) {
	v := chaintest.NewValidators(83, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 5})
	first := b.Child(b.Genesis(), 1)
	empty := b.ChildWith(first, 2, v.Leader(2), nil)
	l, _ := newLedger(t, v.Genesis)
	if _, err := l.ExecuteCertified(first.Block, first.Info); err != nil {
		t.Fatal(err)
	}
	lie := empty.Info
	lie.StateRoot[0] ^= 1
	info, err := l.ExecuteCertified(empty.Block, lie)
	if err != nil || info != empty.Info {
		t.Fatalf("ExecuteCertified(empty) = %+v, %v; want %+v", info, err, empty.Info)
	}
}

// flakyStorage fails the commits of state-tree updates alone (a settle's)
// while fail is set.
type flakyStorage struct {
	*ledger.MemStorage
	fail bool
}

func (s *flakyStorage) Commit(b *ledger.Batch) error {
	if s.fail && len(b.Txs) == 0 && len(b.Tree) > 0 {
		return errors.New("disk full")
	}
	return s.MemStorage.Commit(b)
}

// TestSettleWriteFails: a settle whose write fails leaves the tree where
// it was, and the next one completes it.
func TestSettleWriteFails(t *testing.T) {
	v := chaintest.NewValidators(85, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 10})
	nodes := b.Extend(b.Genesis(), 6)
	st := &flakyStorage{MemStorage: ledger.NewMemStorage(), fail: true}
	l, err := ledger.New(st, v.Genesis)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.ExecuteCertifiedChain(chaintest.Blocks(nodes)); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(chaintest.Blocks(nodes[:4]), nodes[5].QC.LedgerInfo()); err != nil {
		t.Fatal(err)
	}
	if err := l.Settle(context.Background()); err == nil || l.TreeVersion() != 0 {
		t.Fatalf("Settle on a failing disk = %v, tree at %d; want an error and the tree at 0", err, l.TreeVersion())
	}
	st.fail = false
	if err := l.Settle(context.Background()); err != nil || l.TreeVersion() != nodes[3].Info.Version {
		t.Fatalf("Settle again = %v, tree at %d; want %d", err, l.TreeVersion(), nodes[3].Info.Version)
	}
	if root, err := l.StateRoot(); err != nil || root != nodes[3].Info.StateRoot {
		t.Fatalf("StateRoot = %s, %v; want %s", root.Short(), err, nodes[3].Info.StateRoot.Short())
	}
}
