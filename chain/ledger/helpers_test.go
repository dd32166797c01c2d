package ledger_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/chain/ledger"
)

// newLedger returns a ledger at genesis on a fresh MemStorage.
func newLedger(t testing.TB, g *chain.Genesis) (*ledger.Ledger, *ledger.MemStorage) {
	t.Helper()
	st := ledger.NewMemStorage()
	l, err := ledger.New(st, g)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l, st
}

// execute executes the blocks of nodes in order and checks each executed
// info against the builder's.
func execute(t testing.TB, l *ledger.Ledger, nodes ...*chaintest.Node) {
	t.Helper()
	for i, n := range nodes {
		info, err := l.Execute(n.Block)
		if err != nil {
			t.Fatalf("Execute block %d (round %d): %v", i, n.Round(), err)
		}
		if info != n.Info {
			t.Fatalf("Execute block %d (round %d) = %+v, builder says %+v", i, n.Round(), info, n.Info)
		}
	}
}

// sized is a committed chain whose i-th block holds a given number of
// transactions; lis[i] commits block i.
type sized struct {
	b      *chaintest.Builder
	nodes  []*chaintest.Node // the sized blocks, then two empty ones
	lis    []*chain.LedgerInfoWithSignatures
	txs    [][]byte // all transactions, in version order
	ledger *ledger.Ledger
	st     *ledger.MemStorage
}

// newSized builds a chain of blocks with sizes[i] transactions of txSize
// bytes each, followed by two empty blocks so that every sized block is
// committed, and commits the sized blocks one by one into a fresh ledger.
func newSized(t testing.TB, seed uint64, sizes []int, txSize int) *sized {
	t.Helper()
	v := chaintest.NewValidators(seed, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxSize: txSize, Seed: seed})
	s := &sized{b: b}
	parent := b.Genesis()
	add := func(n int) {
		round := parent.Round() + 1
		txs := b.Txs(n)
		parent = b.ChildWith(parent, round, v.Leader(round), txs)
		s.nodes = append(s.nodes, parent)
	}
	for _, n := range sizes {
		add(n)
		s.txs = append(s.txs, s.nodes[len(s.nodes)-1].Block.Payload()...)
	}
	add(0)
	add(0)
	s.ledger, s.st = newLedger(t, v.Genesis)
	execute(t, s.ledger, s.nodes...)
	for i := range sizes {
		li := s.nodes[i+2].QC.LedgerInfo()
		if li.LedgerInfo.CommitInfo != s.nodes[i].Info {
			t.Fatalf("block %d: li commits %+v", i, li.LedgerInfo.CommitInfo)
		}
		s.lis = append(s.lis, li)
		if err := s.ledger.Commit([]*chain.Block{s.nodes[i].Block}, li); err != nil {
			t.Fatalf("Commit block %d: %v", i, err)
		}
	}
	return s
}

// model returns the state written by txs: the last write of each key.
func model(txs [][]byte) map[string][]byte {
	m := make(map[string][]byte)
	for _, tx := range txs {
		if k, v, err := chain.DecodeKV(tx); err == nil {
			m[string(k)] = v
		}
	}
	return m
}

// checkState checks that l's state is exactly want for every key of keys.
func checkState(t testing.TB, l *ledger.Ledger, want map[string][]byte, keys [][]byte) {
	t.Helper()
	for _, k := range keys {
		got, ok, err := l.Get(k)
		if err != nil {
			t.Fatalf("Get(%x): %v", k, err)
		}
		w, wok := want[string(k)]
		if ok != wok || !bytes.Equal(got, w) {
			t.Fatalf("Get(%x) = %x, %v; want %x, %v", k, got, ok, w, wok)
		}
	}
}

// keysOf returns the keys written by txs, plus one never written.
func keysOf(txs [][]byte) [][]byte {
	keys := [][]byte{[]byte("never written")}
	for _, tx := range txs {
		if k, _, err := chain.DecodeKV(tx); err == nil {
			keys = append(keys, k)
		}
	}
	return keys
}

// snapshot is what must not change when a chunk is rejected.
type snapshot struct {
	committed chain.BlockInfo
	version   uint64
	root      chain.Hash
	stored    ledger.Committed
}

func snap(t testing.TB, l *ledger.Ledger, st *ledger.MemStorage) snapshot {
	t.Helper()
	c, err := st.Committed()
	if err != nil {
		t.Fatal(err)
	}
	return snapshot{committed: l.Committed(), version: l.Version(), root: l.Root(), stored: c}
}

func (s snapshot) equal(o snapshot) bool {
	if s.committed != o.committed || s.version != o.version || s.root != o.root ||
		s.stored.Version != o.stored.Version || !slices.Equal(s.stored.Frontier, o.stored.Frontier) {
		return false
	}
	sli, oli := s.stored.LedgerInfo, o.stored.LedgerInfo
	if (sli == nil) != (oli == nil) {
		return false
	}
	return sli == nil || sli.LedgerInfo == oli.LedgerInfo
}

// cloneChunk returns a deep copy of c.
func cloneChunk(c *ledger.Chunk) *ledger.Chunk {
	d := *c
	d.Txs = make([][]byte, len(c.Txs))
	for i, tx := range c.Txs {
		d.Txs[i] = bytes.Clone(tx)
	}
	d.Left = append([]chain.Hash(nil), c.Left...)
	d.Right = append([]chain.Hash(nil), c.Right...)
	return &d
}
