package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/internal/prefixsort"
	"github.com/p2pnode/p2pnode/chain/ledger"
)

// The index of transactions by hash maps the accumulator leaf hash of each
// committed transaction (chain.TxLeafHash) to its version, for GET
// /tx/{hash}. Its durable part is kept as the state is (see staterun.go):
// runs of entries hash | version (8 bytes big-endian), sorted by hash, in
// the tx_hashes bucket under the end version of the transactions they
// index, each of a sealed run's size (maxMergedRun), so that no run is
// ever merged or rewritten. The transactions
// committed since the last run are the index's tail, in memory: a commit
// appends its leaf hashes (which its batch carries) once it is durable,
// and when the tail holds txIndexRun of them a goroutine of the store
// sorts them and writes them as one run, in a transaction of its own. A
// file's tail is hashed again from its transactions when it is opened, so
// the durable index may lag the ledger by any amount without losing an
// entry. So a commit pays for copying 32 bytes a transaction, and the
// sort and the run's write leave the commit path: written with each
// commit, the index cost a forward sync about a third of its speed. A
// hash committed more than once (the same bytes sent again) maps to its
// latest version.

// txIndexRun is how many transactions the tail gathers before they are
// written as a run: a merged run's bound, so that runs are written once and
// never merged (a variable for the tests).
var txIndexRun = maxMergedRun

// txHashEntry is the size of an entry of the index.
const txHashEntry = chain.HashSize + 8

// sortLeaves returns the order of hashes, the leaf hashes of consecutive
// versions, by hash, one index a hash: the latest version of a hash that
// repeats. Leaf hashes are uniformly random, so a stable radix sort on
// their first two bytes leaves ties of one or two, put in order by whole
// hashes; indexes, not hashes, are moved.
func sortLeaves(hashes []chain.Hash) []uint32 {
	top := func(i *uint32) uint64 { return uint64(binary.BigEndian.Uint16(hashes[*i][:2])) }
	order := make([]uint32, len(hashes))
	for i := range order {
		order[i] = uint32(i)
	}
	order = prefixsort.Stable(order, top)
	for lo := 0; lo < len(order); {
		hi := lo + 1
		for hi < len(order) && top(&order[hi]) == top(&order[lo]) {
			hi++
		}
		if hi-lo > 1 { // stable: the versions of a hash stay in order
			slices.SortStableFunc(order[lo:hi], func(a, b uint32) int { return bytes.Compare(hashes[a][:], hashes[b][:]) })
		}
		lo = hi
	}
	j := 0
	for k := range order {
		if k+1 < len(order) && hashes[order[k]] == hashes[order[k+1]] {
			continue // a later version of the hash follows
		}
		order[j] = order[k]
		j++
	}
	return order[:j]
}

// putLeaves writes the leaf hashes of the versions from, from+1, ... in
// the order sortLeaves gave, as the run of the index ending at end.
func putLeaves(tx *bolt.Tx, sc *scratch, hashes []chain.Hash, order []uint32, from, end uint64) error {
	return putVersionRun(tx, sc, bucketTxHashes, txHashEntry, end, len(order),
		func(i int) []byte { return hashes[order[i]][:] }, func(i int) uint64 { return from + uint64(order[i]) })
}

// writeIndexRun is putLeaves for the tail's runs; the tests make it fail.
var writeIndexRun = putLeaves

// txTail is the index's tail: the leaf hashes of the committed versions
// from, from+1, ... not in a run yet.
type txTail struct {
	mu       sync.Mutex
	from     uint64
	hashes   []chain.Hash
	flushing bool // a goroutine is writing a run of the tail
	wg       sync.WaitGroup
}

// loadIndex rebuilds the store's tail: the transactions from the end of
// the index's last run to the committed version, hashed again. A tail of a
// run or more is written at once.
func (s *Store) loadIndex() error {
	t := &s.idx
	err := s.view(func(tx *bolt.Tx) error {
		c, err := readCommitted(tx)
		if err != nil {
			return nil // a corrupt ledger record is Recover's to report; no tail
		}
		from := uint64(0)
		if k, _ := tx.Bucket(bucketTxHashes).Cursor().Last(); k != nil {
			if len(k) != 8 {
				return fmt.Errorf("%w: %s key %s", ErrCorrupt, bucketTxHashes, keyString(k))
			}
			from = binary.BigEndian.Uint64(k)
		}
		if from > c.Version {
			return fmt.Errorf("%w: the index of transactions ends at version %d, past the committed version %d",
				ErrCorrupt, from, c.Version)
		}
		pruned, err := readPruned(tx)
		if err != nil {
			return err
		}
		from = max(from, pruned.Version)
		// A run's worth at least, not grown by doubling.
		hashes := make([]chain.Hash, 0, max(uint64(txIndexRun), c.Version-from))
		const step = 4096 // transactions read at a time
		for at := from; at < c.Version; at += step {
			txs, err := readTxs(tx, at, min(step, c.Version-at))
			if err != nil {
				return err
			}
			for _, t := range txs {
				hashes = append(hashes, chain.TxLeafHash(t))
			}
		}
		t.from, t.hashes = from, hashes
		return nil
	})
	if err == nil {
		s.maybeFlushIndex()
	}
	return err
}

// indexed appends the leaf hashes of b, which the store committed, to the
// tail.
func (s *Store) indexed(b *ledger.Batch) {
	t := &s.idx
	t.mu.Lock()
	i := 0 // each version's leaf comes first among the nodes its append completes
	for v := b.StartVersion; v < b.StartVersion+uint64(len(b.Txs)); v++ {
		t.hashes = append(t.hashes, b.Nodes[i].Hash)
		i += bits.TrailingZeros64(v+1) + 1
	}
	t.mu.Unlock()
	s.maybeFlushIndex()
}

// maybeFlushIndex starts writing the first txIndexRun transactions of the
// tail as a run if it holds that many and no write is in progress.
func (s *Store) maybeFlushIndex() {
	t := &s.idx
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.flushing || len(t.hashes) < txIndexRun {
		return
	}
	t.flushing = true
	from, hashes := t.from, t.hashes[:txIndexRun] // entries below len are never written again
	t.wg.Go(func() {
		order := sortLeaves(hashes)
		end := from + uint64(len(hashes))
		err := s.update(func(tx *bolt.Tx) error { return writeIndexRun(tx, &s.scratch, hashes, order, from, end) })
		t.mu.Lock()
		t.flushing = false
		if err == nil {
			t.advance(end)
		}
		again := err == nil && len(t.hashes) >= txIndexRun
		t.mu.Unlock()
		if again {
			s.maybeFlushIndex()
		}
		// A failed write is tried again with the next commit; the tail
		// keeps every entry meanwhile.
	})
}

// lookup returns the version of the tail's transaction of hash h. It
// scans a snapshot of the tail outside the lock (entries below a slice's
// length are never written again), so that lookups never hold up a
// commit.
func (t *txTail) lookup(h chain.Hash) (uint64, bool) {
	t.mu.Lock()
	from, hashes := t.from, t.hashes
	t.mu.Unlock()
	for i := len(hashes) - 1; i >= 0; i-- { // the latest first
		if hashes[i] == h {
			return from + uint64(i), true
		}
	}
	return 0, false
}

// txVersion returns the version of the committed transaction whose leaf
// hash is h: the newest entry of h, looked up in the runs newest first.
func txVersion(tx *bolt.Tx, h chain.Hash) (uint64, bool, error) {
	c := newRunCursor(tx.Bucket(bucketTxHashes))
	for k, v := c.last(); k != nil; k, v = c.prev() {
		r, err := decodeRun(bucketTxHashes, k, v, txHashEntry)
		if err != nil {
			return 0, false, err
		}
		version, ok, err := lookup(r, h[:])
		if err != nil {
			return 0, false, err
		}
		if ok {
			return version, true, nil
		}
	}
	return 0, false, nil
}

// TxVersion returns the version of the committed transaction whose
// accumulator leaf hash is h (its latest version if it was committed more
// than once), and whether there is one; a pruned one is not found. Safe for concurrent use.
func (s *Store) TxVersion(h chain.Hash) (uint64, bool, error) {
	var version uint64
	var ok bool
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		if version, ok = s.idx.lookup(h); !ok {
			if version, ok, err = txVersion(tx, h); err != nil || !ok {
				return err
			}
		}
		pruned, err := readPruned(tx)
		if err != nil {
			return err
		}
		if version < pruned.Version {
			ok = false // pruned: as unknown as the index entries pruned with it
			return nil
		}
		t, err := txAt(tx, version)
		if err != nil {
			return fmt.Errorf("store: transaction %s is indexed at version %d: %w", h.Short(), version, err)
		}
		if chain.TxLeafHash(t) != h {
			return fmt.Errorf("%w: transaction %s is indexed at version %d, which holds another one", ErrCorrupt, h.Short(), version)
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return version, ok, nil
}
