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
	"github.com/p2pnode/p2pnode/chain/ledger"
)

// The index of transactions by hash maps the accumulator leaf hash of each
// committed transaction (chain.TxLeafHash) to its version, for GET
// /tx/{hash}. Its durable part is kept as the state is (see staterun.go):
// runs of entries hash | version (8 bytes big-endian), sorted by hash, in
// the tx_hashes bucket under the end version of the commit that wrote
// them, merged with the newest runs that are not larger. The transactions
// committed since the last run, at most txIndexRun of them, are the
// index's tail, in memory: a commit adds its leaf hashes (which the batch
// carries) to the tail, and the commit that fills it writes the tail as one
// run, in its own transaction. A file's tail is hashed again from its
// transactions when it is opened. Writing a run a transaction per commit
// cost a sync as much as the state's runs and the leaves' sort together;
// a run per txIndexRun transactions is merged and rewritten far less. A
// hash committed more than once (the same bytes sent again) maps to its
// latest version.

// txIndexRun is how many transactions the index's tail holds before they
// are written as a run (a variable for the tests).
var txIndexRun uint64 = 1 << 16

// txHashEntry is the size of an entry of the index.
const txHashEntry = chain.HashSize + 8

// leafHash is a transaction's leaf hash with its version, for sorting.
type leafHash struct {
	prefix  uint64 // the hash's first 8 bytes, big-endian
	hash    *chain.Hash
	version uint64
}

// sortLeaves sorts ls, given in version order, by hash, keeping one entry
// a hash: the latest version of a hash that repeats. It sorts on the
// hashes' first 8 bytes by a stable radix sort, and compares whole hashes
// only where prefixes tie: a comparison sort cost more than the rest of
// the index.
func sortLeaves(ls []leafHash) []leafHash {
	tmp := make([]leafHash, len(ls))
	for d := range 8 {
		var counts [256]int
		for _, l := range ls {
			counts[byte(l.prefix>>(8*d))]++
		}
		if len(ls) == 0 || counts[byte(ls[0].prefix>>(8*d))] == len(ls) {
			continue // every prefix has this byte
		}
		at := 0
		for b := range counts {
			counts[b], at = at, at+counts[b]
		}
		for _, l := range ls {
			b := byte(l.prefix >> (8 * d))
			tmp[counts[b]] = l
			counts[b]++
		}
		ls, tmp = tmp, ls
	}
	for from := 0; from < len(ls); {
		to := from + 1
		for to < len(ls) && ls[to].prefix == ls[from].prefix {
			to++
		}
		if to-from > 1 { // stable: versions stay in order among equal hashes
			slices.SortStableFunc(ls[from:to], func(a, b leafHash) int { return bytes.Compare(a.hash[:], b.hash[:]) })
		}
		from = to
	}
	j := 0
	for k := range ls {
		if k+1 < len(ls) && *ls[k].hash == *ls[k+1].hash {
			continue
		}
		ls[j] = ls[k]
		j++
	}
	return ls[:j]
}

// putLeaves writes ls, sorted by sortLeaves, as the run of the index
// ending at version end.
func putLeaves(tx *bolt.Tx, sc *scratch, ls []leafHash, end uint64) error {
	return putVersionRun(tx, sc, bucketTxHashes, txHashEntry, end, len(ls),
		func(i int) []byte { return ls[i].hash[:] }, func(i int) uint64 { return ls[i].version })
}

// txTail is the index's tail: the transactions committed since its last
// run. Writers (commits) are serialised by the store; readers take mu.
type txTail struct {
	mu      sync.Mutex
	from    uint64     // the first version of the tail
	pending []leafHash // in version order
}

// load rebuilds the tail of the file read by tx: the transactions from the
// end of the index's last run to the committed version.
func (t *txTail) load(tx *bolt.Tx) error {
	t.pending = nil
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
		return fmt.Errorf("%w: the index of transactions ends at version %d, past the committed version %d", ErrCorrupt, from, c.Version)
	}
	pending := make([]leafHash, 0, c.Version-from)
	const step = 4096 // transactions read at a time
	for at := from; at < c.Version; at += step {
		txs, err := readTxs(tx, at, min(step, c.Version-at))
		if err != nil {
			return err
		}
		for i, t := range txs {
			h := chain.TxLeafHash(t)
			pending = append(pending, leafHash{prefix: binary.BigEndian.Uint64(h[:8]), hash: &h, version: at + uint64(i)})
		}
	}
	t.mu.Lock()
	t.from, t.pending = from, pending
	t.mu.Unlock()
	return nil
}

// add indexes the transactions of b, which tx commits: when the tail is
// full, it writes the tail and b's transactions as a run within tx. It
// returns what to apply to the tail once tx committed.
func (t *txTail) add(tx *bolt.Tx, sc *scratch, b *ledger.Batch) (func(), error) {
	end := b.StartVersion + uint64(len(b.Txs))
	t.mu.Lock()
	full := end-t.from >= txIndexRun
	var ls []leafHash
	if full {
		ls = append(make([]leafHash, 0, len(t.pending)+len(b.Txs)), t.pending...)
	}
	t.mu.Unlock()
	// The batch's leaves are copied: the batch is the caller's.
	leaves := make([]chain.Hash, 0, len(b.Txs))
	eachLeaf(b, func(h *chain.Hash, _ uint64) { leaves = append(leaves, *h) })
	add := func(dst []leafHash) []leafHash {
		for i := range leaves {
			h := &leaves[i]
			dst = append(dst, leafHash{prefix: binary.BigEndian.Uint64(h[:8]), hash: h, version: b.StartVersion + uint64(i)})
		}
		return dst
	}
	if !full {
		return func() {
			t.mu.Lock()
			defer t.mu.Unlock()
			t.pending = add(t.pending)
		}, nil
	}
	ls = add(ls)
	if err := putLeaves(tx, sc, sortLeaves(ls), end); err != nil {
		return nil, err
	}
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.from, t.pending = end, nil
	}, nil
}

// eachLeaf calls fn with the leaf hash and version of each transaction of
// b, whose nodes commit checked: each version's leaf comes first among
// the nodes its append completes.
func eachLeaf(b *ledger.Batch, fn func(*chain.Hash, uint64)) {
	i := 0
	for v := b.StartVersion; v < b.StartVersion+uint64(len(b.Txs)); v++ {
		fn(&b.Nodes[i].Hash, v)
		i += bits.TrailingZeros64(v+1) + 1
	}
}

// lookup returns the version of the tail's transaction of hash h.
func (t *txTail) lookup(h chain.Hash) (uint64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := len(t.pending) - 1; i >= 0; i-- { // the latest first
		if *t.pending[i].hash == h {
			return t.pending[i].version, true
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
// than once), and whether there is one. Safe for concurrent use.
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

// indexTxHashes indexes the committed transactions of a file of schema 2,
// which had no index of transactions by hash, in runs of maxMergedRun.
func indexTxHashes(tx *bolt.Tx, sc *scratch) error {
	if _, err := tx.CreateBucketIfNotExists(bucketTxHashes); err != nil {
		return fmt.Errorf("store: create bucket %q: %w", bucketTxHashes, err)
	}
	c, err := readCommitted(tx)
	if err != nil {
		return err
	}
	const step = 4096 // transactions read at a time
	for start := uint64(0); start < c.Version; {
		n := min(c.Version-start, maxMergedRun)
		ls := make([]leafHash, 0, n)
		for at := start; at < start+n; at += step {
			txs, err := readTxs(tx, at, min(step, start+n-at))
			if err != nil {
				return err
			}
			for i, t := range txs {
				h := chain.TxLeafHash(t)
				ls = append(ls, leafHash{prefix: binary.BigEndian.Uint64(h[:8]), hash: &h, version: at + uint64(i)})
			}
		}
		if err := putLeaves(tx, sc, sortLeaves(ls), start+n); err != nil {
			return err
		}
		start += n
	}
	return nil
}
