package store

import (
	"errors"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/transparency-dev/merkle/compact"
	bolt "go.etcd.io/bbolt"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/chain/ledger"
)

// commitTxs commits txs as one batch on top of acc and returns the batch.
func commitTxs(t *testing.T, st *Store, acc *chain.Accumulator, txs [][]byte) {
	t.Helper()
	b := &ledger.Batch{StartVersion: acc.Size(), Txs: txs}
	for _, tx := range txs {
		acc.AppendLeaf(chain.TxLeafHash(tx), func(id compact.NodeID, h chain.Hash) {
			b.Nodes = append(b.Nodes, ledger.Node{ID: id, Hash: h})
		})
	}
	b.Frontier = acc.Frontier()
	if err := st.Commit(withTree(t, st, b)); err != nil {
		t.Fatalf("commit at %d: %v", b.StartVersion, err)
	}
}

// checkTxIndex checks that every transaction of txs is found at its
// latest version.
func checkTxIndex(t *testing.T, st *Store, txs [][]byte) {
	t.Helper()
	latest := map[chain.Hash]uint64{}
	for i, tx := range txs {
		latest[chain.TxLeafHash(tx)] = uint64(i)
	}
	for h, want := range latest {
		if got, ok, err := st.TxVersion(h); err != nil || !ok || got != want {
			t.Fatalf("TxVersion(%s) = %d, %v, %v; want %d", h.Short(), got, ok, err, want)
		}
	}
	if _, ok, err := st.TxVersion(chain.TxLeafHash([]byte("never committed"))); ok || err != nil {
		t.Fatalf("TxVersion(never committed) = %v, %v", ok, err)
	}
}

// TestTxIndex commits batches with repeated transactions, within a batch
// and across batches, through merges of runs (sealing is the state runs'
// code, tested there), and finds each transaction at its latest version,
// also after a reopen; a file of schema 3 is refused.
func TestTxIndex(t *testing.T) {
	defer func(n int) { txIndexRun = n }(txIndexRun)
	txIndexRun = 700 // runs every few batches, a tail between them
	v := chaintest.NewValidators(71, 4)
	path := filepath.Join(t.TempDir(), "txindex.db")
	st, err := Open(path, v.Genesis)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(71, 1))
	acc := chain.NewAccumulator()
	var all [][]byte
	for batch := range 40 {
		n := 1 + rng.IntN(300) // about 6,000 in all: the migration reads them in two steps
		txs := make([][]byte, n)
		for i := range txs {
			if len(all) > 0 && rng.IntN(10) == 0 {
				txs[i] = all[rng.IntN(len(all))] // sent again
				continue
			}
			txs[i] = []byte{byte(batch), byte(i), byte(i >> 8), byte(i >> 16), byte(rng.Uint32())}
		}
		commitTxs(t, st, acc, txs)
		all = append(all, txs...)
		if batch == 9 || batch == 39 {
			checkTxIndex(t, st, all)
		}
	}
	// Transactions committed while no run was written (as by a node
	// killed before its index caught up) are found, and written, after
	// the file is opened again.
	txIndexRun = 1 << 30
	lag := make([][]byte, 1500)
	for i := range lag {
		lag[i] = []byte{'l', byte(i), byte(i >> 8)}
	}
	commitTxs(t, st, acc, lag)
	all = append(all, lag...)
	txIndexRun = 700
	// Reopened: the tail is hashed again from the transactions.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err = Open(path, v.Genesis); err != nil {
		t.Fatal(err)
	}
	st.idx.wg.Wait() // the runs the lagging tail filled
	st.idx.mu.Lock()
	from, tail := st.idx.from, len(st.idx.hashes)
	st.idx.mu.Unlock()
	if from == 0 || tail == 0 || tail >= txIndexRun {
		t.Fatalf("tail from version %d with %d transactions: want runs and a tail of less than a run", from, tail)
	}
	checkTxIndex(t, st, all)
	// A file of an earlier schema, whose chain had no state tree, is
	// refused.
	if err := st.db.Update(func(tx *bolt.Tx) error {
		return putValue(tx, bucketMeta, keySchema, uint64(3))
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, v.Genesis); !errors.Is(err, ErrSchema) {
		t.Fatalf("open a file of schema 3: %v, want ErrSchema", err)
	}
}

// TestTxIndexFailedRunIsRetried: a run the store cannot write leaves every
// transaction in the tail, found as before, and is written with a later
// commit.
func TestTxIndexFailedRunIsRetried(t *testing.T) {
	defer func(n int) { txIndexRun = n }(txIndexRun)
	txIndexRun = 100
	v := chaintest.NewValidators(72, 4)
	st, err := Open(filepath.Join(t.TempDir(), "txindex.db"), v.Genesis)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	defer func(w func(*bolt.Tx, *scratch, []chain.Hash, []uint32, uint64, uint64) error) { writeIndexRun = w }(writeIndexRun)
	block := func(fail bool) {
		writeIndexRun = putLeaves
		if fail {
			writeIndexRun = func(*bolt.Tx, *scratch, []chain.Hash, []uint32, uint64, uint64) error {
				return errors.New("disk full")
			}
		}
	}
	block(true)
	acc := chain.NewAccumulator()
	var all [][]byte
	commit := func(n int) {
		t.Helper()
		txs := make([][]byte, n)
		for i := range txs {
			txs[i] = []byte{'r', byte(len(all) + i), byte((len(all) + i) >> 8)}
		}
		commitTxs(t, st, acc, txs)
		all = append(all, txs...)
		st.idx.wg.Wait()
	}
	commit(150)
	st.idx.mu.Lock()
	from, tail := st.idx.from, len(st.idx.hashes)
	st.idx.mu.Unlock()
	if from != 0 || tail != 150 {
		t.Fatalf("after a failed run: tail from %d with %d transactions, want 0 and 150", from, tail)
	}
	checkTxIndex(t, st, all)
	block(false)
	commit(10)
	st.idx.mu.Lock()
	from, tail = st.idx.from, len(st.idx.hashes)
	st.idx.mu.Unlock()
	if from != 100 || tail != 60 {
		t.Fatalf("after the retry: tail from %d with %d transactions, want 100 and 60", from, tail)
	}
	checkTxIndex(t, st, all)
}
