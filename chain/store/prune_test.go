package store_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/blockstore"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/chain/ledger"
)

// prunedChain is a chain of 60 blocks committed in batches of 5 on a
// store, with the state its transactions write.
type prunedChain struct {
	v     *chaintest.Validators
	nodes []*chaintest.Node
	path  string
	txs   [][]byte // all transactions, in version order
}

// newPrunedChain builds blocks whose transactions write keys of a pool of
// 20 (so keys are written again, above and below any version) and a key of
// their own, and commits them into a store at path.
func newPrunedChain(t *testing.T) *prunedChain {
	t.Helper()
	c := &prunedChain{v: chaintest.NewValidators(91, 4), path: filepath.Join(t.TempDir(), "node.db")}
	b := chaintest.NewBuilder(c.v, chaintest.BuilderConfig{TxSize: 40, Seed: 91})
	parent := b.Genesis()
	for round := uint64(1); round <= 60; round++ {
		var txs [][]byte
		for i := range 1 + round%3 {
			key := fmt.Sprintf("pool/%d", (round*7+i)%20)
			if i == 2 {
				key = fmt.Sprintf("own/%d", round)
			}
			tx, err := chain.EncodeKV([]byte(key), fmt.Appendf(nil, "round %d tx %d", round, i))
			if err != nil {
				t.Fatal(err)
			}
			txs = append(txs, tx)
		}
		c.txs = append(c.txs, txs...)
		parent = b.ChildWith(parent, round, c.v.Leader(round), txs)
		c.nodes = append(c.nodes, parent)
	}
	o := c.open(t)
	defer o.Disk.Close()
	for i := 0; i < len(c.nodes); i += 5 {
		if err := o.Blocks.InsertChain(chaintest.Blocks(c.nodes[i : i+5])); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (c *prunedChain) open(t *testing.T) *blockstore.Opened {
	t.Helper()
	o, err := blockstore.Open(c.path, c.v.Genesis, blockstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// check checks that the ledger of o keeps everything from version w: the
// state (whatever the version that wrote a key), chunks and transaction
// proofs from w, and the archived blocks whose transactions start at w or
// later; and that what lies below w fails with ledger.ErrPruned.
func (c *prunedChain) check(t *testing.T, o *blockstore.Opened, w uint64) {
	t.Helper()
	l := o.Ledger
	if got, err := o.Disk.Earliest(); err != nil || got != w {
		t.Fatalf("Earliest = %d, %v; want %d", got, err, w)
	}
	li := l.LedgerInfo()
	info := li.LedgerInfo.CommitInfo
	state := map[string]string{} // the last committed write of each key
	for _, tx := range c.txs[:info.Version] {
		k, v, _ := chain.DecodeKV(tx)
		state[string(k)] = string(v)
	}
	for k, want := range state {
		got, ok, err := l.Get([]byte(k))
		if err != nil || !ok || string(got) != want {
			t.Fatalf("Get(%s) = %q, %v, %v; want %q", k, got, ok, err, want)
		}
	}
	for start := w; start < info.Version; start += 3 {
		chunk, err := l.GetChunk(start, info.Version, 5)
		if err != nil {
			t.Fatalf("GetChunk(%d): %v", start, err)
		}
		if err := ledger.VerifyChunk(chunk, chunk.Left, start, info); err != nil {
			t.Fatalf("chunk from %d: %v", start, err)
		}
	}
	for v, tx := range c.txs {
		h := chain.TxLeafHash(tx)
		p, ok, err := l.TxProof(h)
		switch {
		case uint64(v) < w:
			if ok || err != nil {
				t.Fatalf("TxProof of pruned version %d = %v, %v; want not found", v, ok, err)
			}
		case uint64(v) >= info.Version:
		case err != nil || !ok:
			t.Fatalf("TxProof of version %d = %v, %v", v, ok, err)
		default:
			if err := ledger.VerifyTxProof(c.v.Verifier, h, p); err != nil {
				t.Fatalf("proof of version %d: %v", v, err)
			}
		}
	}
	if w > 0 {
		if _, err := l.GetChunk(w-2, info.Version, 5); !errors.Is(err, ledger.ErrPruned) {
			t.Fatalf("GetChunk below the history kept: %v, want ErrPruned", err)
		}
	}
	cbs, err := l.BlocksFrom(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, cb := range cbs {
		if first := cb.Info.Version - uint64(len(cb.Block.Payload())); first < w {
			t.Fatalf("block of round %d kept, its transactions start at %d, below %d", cb.Info.Round, first, w)
		}
	}
	if w > 0 && len(cbs) > 0 && l.HasHistoryBelow(cbs[0].Block) {
		t.Fatalf("the first block kept (round %d) claims history below it", cbs[0].Info.Round)
	}
	if len(cbs) == 0 || cbs[len(cbs)-1].Info != info {
		t.Fatalf("archive ends before the committed block")
	}
}

// TestPrune prunes four times (once at an odd version) and checks after each prune, and after the file
// is opened again, that the store keeps exactly the history from the
// version it reports.
func TestPrune(t *testing.T) {
	c := newPrunedChain(t)
	o := c.open(t)
	c.check(t, o, 0)
	var w uint64
	odd := false
	for _, before := range []uint64{23, 37, 61, 90} {
		got, err := o.Disk.Prune(before)
		if err != nil {
			t.Fatal(err)
		}
		if got <= w || got > before {
			t.Fatalf("Prune(%d) kept from %d (was %d): want a version in (%d, %d]", before, got, w, w, before)
		}
		t.Logf("Prune(%d): history from version %d", before, got)
		odd = odd || got%2 == 1
		w = got
		c.check(t, o, w)
		if err := o.Disk.Close(); err != nil {
			t.Fatal(err)
		}
		o = c.open(t)
		c.check(t, o, w)
	}
	if !odd {
		t.Fatal("no prune at an odd version: the straddling node went untested")
	}
	if again, err := o.Disk.Prune(w); err != nil || again != w {
		t.Fatalf("Prune(%d) again = %d, %v", w, again, err)
	}
	if _, err := o.Disk.Txs(w-1, 1); !errors.Is(err, ledger.ErrPruned) {
		t.Fatalf("Txs below the history kept: %v, want ErrPruned", err)
	}
	if err := o.Disk.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestPruneStopsAtTheStateTree: transactions that the state tree has not
// read yet (it follows a sync from them) are never pruned, whatever the
// window asks.
func TestPruneStopsAtTheStateTree(t *testing.T) {
	f := newFixture(24, 10)
	st := openStore(t, tempPath(t), f.v.Genesis)
	defer st.Close()
	m := newLedgerSim()
	for range 3 {
		m.commit(t, st, f.b.Txs(10), nil) // with their trees: at version 30
	}
	for range 5 {
		b := m.batch(f.b.Txs(10), nil)
		tree := b.Tree
		b.Tree = nil // a sync's commits: the stored tree stays at 30
		if err := st.Commit(b); err != nil {
			t.Fatal(err)
		}
		b.Tree = tree // the model's goes on
		m.apply(b)
	}
	c, err := st.Committed()
	if err != nil || c.Version != 80 || c.TreeVersion != 30 {
		t.Fatalf("Committed() = version %d, tree %d, %v; want 80, 30", c.Version, c.TreeVersion, err)
	}
	w, err := st.Prune(70)
	if err != nil || w > 30 {
		t.Fatalf("Prune(70) = %d, %v; want at most the tree's version 30", w, err)
	}
	if _, err := st.Txs(30, 50); err != nil {
		t.Fatalf("the transactions the tree has to read: %v", err)
	}
}
