package ledger_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/chain/ledger"
)

func TestNewAtGenesis(t *testing.T) {
	v := chaintest.NewValidators(1, 4)
	l, _ := newLedger(t, v.Genesis)
	if got, want := l.Committed(), v.Genesis.BlockInfo(); got != want {
		t.Fatalf("Committed() = %+v, want %+v", got, want)
	}
	if l.Version() != 0 || l.Root() != chain.EmptyAccumulatorRoot || l.LedgerInfo() != nil {
		t.Fatalf("Version %d Root %s LedgerInfo %v, want 0, empty root, nil", l.Version(), l.Root().Short(), l.LedgerInfo())
	}
	info, err := l.Execute(v.Genesis.Block())
	if err != nil || info != v.Genesis.BlockInfo() {
		t.Fatalf("Execute(genesis) = %+v, %v", info, err)
	}
	if _, err := ledger.New(nil, v.Genesis); err == nil {
		t.Fatal("New(nil storage) succeeded")
	}
}

// TestExecuteMatchesBuilder is the cross-check with chaintest: executing its
// blocks gives exactly the infos its chains are signed with.
func TestExecuteMatchesBuilder(t *testing.T) {
	for _, cfg := range []chaintest.BuilderConfig{
		{TxsPerBlock: 0},
		{TxsPerBlock: 1, TxSize: 5},
		{TxsPerBlock: 3, TxSize: 40},
		{TxsPerBlock: 17, Seed: 9},
	} {
		v := chaintest.NewValidators(2, 4)
		b := chaintest.NewBuilder(v, cfg)
		nodes := b.Extend(b.Genesis(), 12)
		l, _ := newLedger(t, v.Genesis)
		execute(t, l, nodes...)
		// Idempotent: again, in reverse order, gives the same.
		for i := len(nodes) - 1; i >= 0; i-- {
			execute(t, l, nodes[i])
		}
		// Deterministic: another ledger gives the same.
		l2, _ := newLedger(t, v.Genesis)
		execute(t, l2, nodes...)
	}
}

func TestExecuteUnknownParent(t *testing.T) {
	v := chaintest.NewValidators(3, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 2})
	nodes := b.Extend(b.Genesis(), 3)
	l, _ := newLedger(t, v.Genesis)
	if _, err := l.Execute(nodes[1].Block); !errors.Is(err, ledger.ErrUnknownParent) {
		t.Fatalf("Execute(orphan) = %v, want ErrUnknownParent", err)
	}
	other := chaintest.NewValidators(4, 4)
	if _, err := l.Execute(other.Genesis.Block()); !errors.Is(err, ledger.ErrUnknownParent) {
		t.Fatalf("Execute(other genesis) = %v, want ErrUnknownParent", err)
	}
	execute(t, l, nodes...)
	l.Forget(nodes[1].Block.ID)
	// The child of a forgotten block has no parent any more; an executed
	// block keeps its result.
	if _, err := l.Execute(b.Child(nodes[1], 9).Block); !errors.Is(err, ledger.ErrUnknownParent) {
		t.Fatalf("Execute(child of forgotten) = %v, want ErrUnknownParent", err)
	}
	execute(t, l, nodes[2])
}

// TestCommitChain executes and commits a chain as consensus would: each QC
// of the chain commits the block two rounds back.
func TestCommitChain(t *testing.T) {
	v := chaintest.NewValidators(5, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 5, TxSize: 30})
	nodes := b.Extend(b.Genesis(), 20)
	l, st := newLedger(t, v.Genesis)
	var txs [][]byte
	committed := 0 // number of nodes committed
	for i, n := range nodes {
		execute(t, l, n)
		if !n.QC.CommitsBlock() {
			continue
		}
		if i%3 != 0 && i != len(nodes)-1 { // commit several blocks at once too
			continue
		}
		li := n.QC.LedgerInfo()
		var path []*chain.Block
		for ; committed < len(nodes) && nodes[committed].Info != li.LedgerInfo.CommitInfo; committed++ {
			path = append(path, nodes[committed].Block)
		}
		path = append(path, nodes[committed].Block)
		committed++
		if err := l.Commit(path, li); err != nil {
			t.Fatalf("Commit at node %d: %v", i, err)
		}
		for _, blk := range path {
			txs = append(txs, blk.Payload()...)
		}
		last := nodes[committed-1]
		if l.Committed() != last.Info || l.Version() != last.Info.Version || l.Root() != last.Info.ExecutedStateID ||
			l.LedgerInfo() != li {
			t.Fatalf("after commit at node %d: committed %+v version %d", i, l.Committed(), l.Version())
		}
		// Committing the committed block again is a no-op; anything else
		// without blocks is a mismatch.
		if err := l.Commit(nil, li); err != nil {
			t.Fatalf("Commit(nil, same li) = %v", err)
		}
		// Committed blocks are no longer speculative, but executing the
		// committed one answers its info.
		if _, err := l.Execute(last.Block); err != nil {
			t.Fatalf("Execute(committed) = %v", err)
		}
	}
	checkState(t, l, model(txs), keysOf(txs))

	// A restart reads the same ledger back.
	l2, err := ledger.New(st, v.Genesis)
	if err != nil {
		t.Fatal(err)
	}
	if l2.Committed() != l.Committed() || l2.Version() != l.Version() || l2.Root() != l.Root() {
		t.Fatalf("restarted ledger differs: %+v", l2.Committed())
	}
	// and continues from its committed block.
	more := b.Extend(nodes[committed-1], 3)
	execute(t, l2, more...)
}

// TestCommitForks commits one branch of a fork and checks what remains
// executable.
func TestCommitForks(t *testing.T) {
	v := chaintest.NewValidators(6, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 4})
	g := b.Genesis()
	a := b.Extend(g, 5)     // rounds 1..5
	f1 := b.Child(a[0], 7)  // fork on a1
	f2 := b.Child(f1, 8)    // its child
	low := b.Child(a[0], 2) // a sibling of a2, round 2
	l, _ := newLedger(t, v.Genesis)
	execute(t, l, a...)
	execute(t, l, f1, f2, low)
	if f1.Info == a[1].Info || f1.Info.ExecutedStateID == a[1].Info.ExecutedStateID {
		t.Fatal("fork executes like the main branch")
	}

	// A fork is not a path from the committed block.
	if err := l.Commit([]*chain.Block{a[0].Block, f1.Block, a[2].Block}, a[4].QC.LedgerInfo()); !errors.Is(err, ledger.ErrNotChild) {
		t.Fatalf("Commit(across fork) = %v, want ErrNotChild", err)
	}
	// a5's QC commits a3.
	if err := l.Commit(chaintest.Blocks(a[:3]), a[4].QC.LedgerInfo()); err != nil {
		t.Fatal(err)
	}
	// low (round 2 ≤ 3) was dropped; f1, f2 (rounds 7, 8) remain until
	// forgotten, but can never be committed.
	if _, err := l.Execute(b.Child(low, 9).Block); !errors.Is(err, ledger.ErrUnknownParent) {
		t.Fatalf("Execute(child of dropped) = %v, want ErrUnknownParent", err)
	}
	execute(t, l, b.Child(f2, 9))
	if err := l.Commit([]*chain.Block{f1.Block}, f2.QC.LedgerInfo()); !errors.Is(err, ledger.ErrNotChild) {
		t.Fatalf("Commit(fork) = %v, want ErrNotChild", err)
	}
	l.Forget(f1.Block.ID, f2.Block.ID)
	if _, err := l.Execute(b.Child(f2, 10).Block); !errors.Is(err, ledger.ErrUnknownParent) {
		t.Fatalf("Execute(child of forgotten fork) = %v, want ErrUnknownParent", err)
	}
	// The main branch continues.
	next := b.Extend(a[4], 2)
	execute(t, l, next...)
	if err := l.Commit(chaintest.Blocks(a[3:5]), next[1].QC.LedgerInfo()); err != nil {
		t.Fatal(err)
	}
	if l.Committed() != a[4].Info {
		t.Fatalf("Committed() = %+v, want a5", l.Committed())
	}
}

func TestCommitErrors(t *testing.T) {
	v := chaintest.NewValidators(7, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 3})
	nodes := b.Extend(b.Genesis(), 6)
	ob := chaintest.NewBuilder(chaintest.NewValidators(8, 4), chaintest.BuilderConfig{TxsPerBlock: 3})
	other := ob.Extend(ob.Genesis(), 3)
	unexecuted := b.Child(nodes[2], 20)
	commits := func(n *chaintest.Node) *chain.LedgerInfoWithSignatures {
		li := v.SignLedgerInfo(chain.LedgerInfo{CommitInfo: n.Info}, v.All())
		return &li
	}
	wrongRoot := nodes[1].Info
	wrongRoot.ExecutedStateID[0] ^= 1

	tests := []struct {
		name    string
		blocks  []*chain.Block
		li      *chain.LedgerInfoWithSignatures
		wantErr error
	}{
		{"skips a block", []*chain.Block{nodes[1].Block}, commits(nodes[1]), ledger.ErrNotChild},
		{"out of order", []*chain.Block{nodes[1].Block, nodes[0].Block}, commits(nodes[0]), ledger.ErrNotChild},
		{"other chain", chaintest.Blocks(other[:1]), commits(other[0]), ledger.ErrNotChild},
		{"not executed", []*chain.Block{nodes[0].Block, nodes[1].Block, nodes[2].Block, unexecuted.Block}, commits(unexecuted), ledger.ErrNotExecuted},
		{"li commits a later block", chaintest.Blocks(nodes[:2]), commits(nodes[2]), ledger.ErrCommitMismatch},
		{"li commits an earlier block", chaintest.Blocks(nodes[:2]), commits(nodes[0]), ledger.ErrCommitMismatch},
		{"li with another root", chaintest.Blocks(nodes[:2]), &chain.LedgerInfoWithSignatures{LedgerInfo: chain.LedgerInfo{CommitInfo: wrongRoot}}, ledger.ErrCommitMismatch},
		{"nothing to commit", nil, commits(nodes[1]), ledger.ErrCommitMismatch},
	}
	l, st := newLedger(t, v.Genesis)
	execute(t, l, nodes...)
	before := snap(t, l, st)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := l.Commit(tt.blocks, tt.li); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Commit = %v, want %v", err, tt.wantErr)
			}
			if !snap(t, l, st).equal(before) {
				t.Fatal("a failed commit changed the ledger")
			}
		})
	}
	// The executed results survived the failures.
	if err := l.Commit(chaintest.Blocks(nodes[:4]), nodes[5].QC.LedgerInfo()); err != nil {
		t.Fatal(err)
	}
}

// TestState checks the key/value semantics: last write wins within a block,
// across blocks and across commits; other transactions write nothing.
func TestState(t *testing.T) {
	v := chaintest.NewValidators(9, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{})
	kv := func(k, val string) []byte {
		tx, err := chain.EncodeKV([]byte(k), []byte(val))
		if err != nil {
			t.Fatal(err)
		}
		return tx
	}
	blocks := [][][]byte{
		{kv("a", "1"), kv("b", "1"), kv("a", "2"), []byte("opaque"), kv("c", "")},
		{kv("b", "2"), {chain.TxKindKV, 0, 'x'}, kv("d", "1")},
		{kv("d", "2"), kv("a", "3"), kv("d", "3")},
		{},
		{},
	}
	parent := b.Genesis()
	var nodes []*chaintest.Node
	for _, txs := range blocks {
		r := parent.Round() + 1
		parent = b.ChildWith(parent, r, v.Leader(r), txs)
		nodes = append(nodes, parent)
	}
	l, _ := newLedger(t, v.Genesis)
	execute(t, l, nodes...)
	// Nothing is visible before commit.
	if _, ok, _ := l.Get([]byte("a")); ok {
		t.Fatal("speculative write visible")
	}
	if err := l.Commit(chaintest.Blocks(nodes[:1]), nodes[2].QC.LedgerInfo()); err != nil {
		t.Fatal(err)
	}
	keys := [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("d"), []byte("x"), []byte("opaque")}
	checkState(t, l, map[string][]byte{"a": []byte("2"), "b": []byte("1"), "c": {}}, keys)
	if err := l.Commit(chaintest.Blocks(nodes[1:3]), nodes[4].QC.LedgerInfo()); err != nil {
		t.Fatal(err)
	}
	checkState(t, l, map[string][]byte{"a": []byte("3"), "b": []byte("2"), "c": {}, "d": []byte("3")}, keys)
}

// TestConcurrent runs Execute, GetChunk and Commit at once (for -race).
func TestConcurrent(t *testing.T) {
	v := chaintest.NewValidators(10, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 20})
	nodes := b.Extend(b.Genesis(), 30)
	l, _ := newLedger(t, v.Genesis)
	execute(t, l, nodes[:2]...)
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if ver := l.Version(); ver > 0 {
				if _, err := l.GetChunk(0, ver, 7); err != nil {
					t.Errorf("GetChunk: %v", err)
					return
				}
			}
		}
	})
	for i := 2; i < len(nodes); i++ {
		execute(t, l, nodes[i])
		var ex sync.WaitGroup
		if i+1 < len(nodes) {
			ex.Go(func() {
				if info, err := l.Execute(nodes[i+1].Block); err != nil || info != nodes[i+1].Info {
					t.Errorf("Execute %d = %+v, %v", i+1, info, err)
				}
			})
		}
		if err := l.Commit([]*chain.Block{nodes[i-2].Block}, nodes[i].QC.LedgerInfo()); err != nil {
			t.Fatalf("Commit %d: %v", i, err)
		}
		ex.Wait()
	}
	close(done)
	wg.Wait()
	if l.Committed() != nodes[len(nodes)-3].Info {
		t.Fatalf("Committed() = %+v", l.Committed())
	}
}
