package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"

	bolt "go.etcd.io/bbolt"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/ledger"
)

// The state is an index from each key to the version of the transaction
// that wrote it last; the value is read from that transaction. The index is
// a small log-structured merge tree of sorted runs in the state bucket: each
// commit writes its writes as one new run, merged with the newest stored
// runs while they hold no more entries than the merge so far (a binary
// counter), as long as the merged run stays within maxMergedRun entries.
// An entry is so rewritten at most about log2(maxMergedRun / writes per
// commit) times, in sequential pages, where a B-tree keyed by state key
// would rewrite a random page per write. A run that reached the bound is
// never merged again: a merge reads, holds and writes at most maxMergedRun
// entries whatever the size of the state, so a commit's memory and time do
// not grow with the chain. The price is paid by lookups, which
// binary-search every run newest first (about writes / maxMergedRun of
// them, plus a logarithmic tail), and by keys written again after their
// run was sealed, whose older entries stay until nothing reads them.
//
// A state run is a run (see runs.go) of entries key | version (8 bytes
// big-endian), sorted by key, one per key, stored under the 8-byte end
// version of the commit that wrote it, so that newer runs have larger keys.

// maxStateEntry bounds one entry of a state run.
const maxStateEntry = chain.MaxKeySize + 8

// maxMergedRun bounds the entries of a run that merges produce: with
// 16-byte entries, about 5 MiB.
const maxMergedRun = 1 << 18

func entryKey(e []byte) []byte { return e[:len(e)-8] }

// stateEntry returns item i of the state run r, checked to hold a key.
func stateEntry(r run, i uint64) ([]byte, error) {
	e, err := r.item(i)
	if err == nil && len(e) < 9 {
		err = fmt.Errorf("%w: %s key %s: entry %d of %d bytes", ErrCorrupt, r.bucket, keyString(r.key), i, len(e))
	}
	return e, err
}

// lookup binary-searches the state run r for key, after checking that key
// is within the run's first and last keys: runs of keys written in order
// (sealed runs, mostly) are passed over with two reads.
func lookup(r run, key []byte) (version uint64, found bool, err error) {
	lo, hi := uint64(0), r.count()
	if hi == 0 {
		return 0, false, nil
	}
	for _, i := range []uint64{0, hi - 1} {
		e, err := stateEntry(r, i)
		if err != nil {
			return 0, false, err
		}
		if c := bytes.Compare(key, entryKey(e)); (i == 0 && c < 0) || (i > 0 && c > 0) {
			return 0, false, nil
		}
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		e, err := stateEntry(r, mid)
		if err != nil {
			return 0, false, err
		}
		switch c := bytes.Compare(entryKey(e), key); {
		case c == 0:
			return binary.BigEndian.Uint64(e[len(e)-8:]), true, nil
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return 0, false, nil
}

// getState returns the value of key: the value of the transaction its
// newest entry names, or the value kept when that transaction was pruned.
func getState(tx *bolt.Tx, key []byte) ([]byte, bool, error) {
	c := newRunCursor(tx.Bucket(bucketState))
	for k, v := c.last(); k != nil; k, v = c.prev() {
		r, err := decodeRun(bucketState, k, v, maxStateEntry)
		if err != nil {
			return nil, false, err
		}
		version, ok, err := lookup(r, key)
		if err != nil || !ok {
			if err != nil {
				return nil, false, err
			}
			continue
		}
		pruned, err := readPruned(tx)
		if err != nil {
			return nil, false, err
		}
		if version < pruned.Version {
			val, err := keptValue(tx, key, version)
			return val, err == nil, err
		}
		t, err := txAt(tx, version)
		if err != nil {
			return nil, false, fmt.Errorf("%w: state key %x names version %d: %w", ErrCorrupt, key, version, err)
		}
		k, val, err := chain.DecodeKV(t)
		if err != nil || !bytes.Equal(k, key) {
			return nil, false, fmt.Errorf("%w: state key %x names version %d, which does not write it", ErrCorrupt, key, version)
		}
		return bytes.Clone(val), true, nil
	}
	// No run names the key: unless the ledger starts at a restored
	// snapshot (pruned at its version), the key is not set.
	if pruned, err := readPruned(tx); err != nil || pruned.Version == 0 {
		return nil, false, err
	}
	return treeValue(tx, key)
}

// checkWrites checks that ws are sorted by key, one per key, each written
// by the transaction of b it names.
func checkWrites(b *ledger.Batch) error {
	for i, w := range b.Writes {
		if len(w.Key) == 0 || len(w.Key) > chain.MaxKeySize {
			return fmt.Errorf("%w: state write with a key of %d bytes", ErrInvalid, len(w.Key))
		}
		if i > 0 && bytes.Compare(b.Writes[i-1].Key, w.Key) >= 0 {
			return fmt.Errorf("%w: state write %d is out of key order", ErrInvalid, i)
		}
		if w.Version < b.StartVersion || w.Version-b.StartVersion >= uint64(len(b.Txs)) {
			return fmt.Errorf("%w: state write %d names version %d, outside the batch", ErrInvalid, i, w.Version)
		}
		if k, _, err := chain.DecodeKV(b.Txs[w.Version-b.StartVersion]); err != nil || !bytes.Equal(k, w.Key) {
			return fmt.Errorf("%w: state write %d names version %d, which does not write its key", ErrInvalid, i, w.Version)
		}
	}
	return nil
}

// putState stores ws, checked by checkWrites, as a new state run under the
// version end (see putVersionRun).
func putState(tx *bolt.Tx, sc *scratch, ws []ledger.KV, end uint64) error {
	return putVersionRun(tx, sc, bucketState, maxStateEntry, end, len(ws),
		func(i int) []byte { return ws[i].Key }, func(i int) uint64 { return ws[i].Version })
}

// putVersionRun stores n entries key(i) | version(i), sorted by key with
// one entry a key, as a new run of bucket under the version end, merged
// with the newest runs that are not larger, while the merged run stays
// within maxMergedRun entries: the state and the index of transactions by
// hash are such runs.
func putVersionRun(tx *bolt.Tx, sc *scratch, bucket []byte, maxEntry uint32, end uint64, n int,
	key func(int) []byte, version func(int) uint64) error {
	if n == 0 {
		return nil
	}
	head := 4 + 4*n
	size := head
	for i := range n {
		size += len(key(i)) + 8
	}
	fresh := sc.get(size)[:head]
	binary.BigEndian.PutUint32(fresh, uint32(n))
	for i := range n {
		fresh = append(fresh, key(i)...)
		fresh = binary.BigEndian.AppendUint64(fresh, version(i))
		binary.BigEndian.PutUint32(fresh[4+4*i:], uint32(len(fresh)-head))
	}
	srcs := []run{{bucket: bucket, key: versionKey(end), ends: fresh[4:head], data: fresh[head:], maxItem: maxEntry}}
	b := tx.Bucket(bucket)
	b.FillPercent = appendFillPercent
	var old [][]byte // keys of the merged runs
	count := uint64(n)
	c := newRunCursor(b)
	for k, v := c.last(); k != nil; k, v = c.prev() {
		r, err := decodeRun(bucket, k, v, maxEntry)
		if err != nil {
			return err
		}
		if r.count() > count || count+r.count() > maxMergedRun {
			break
		}
		srcs = append(srcs, r)
		old = append(old, bytes.Clone(k))
		count += r.count()
	}
	value := fresh
	if len(srcs) > 1 {
		var err error
		if value, err = mergeRuns(sc, srcs); err != nil {
			return err
		}
	}
	for _, k := range old {
		if err := b.DeleteBucket(k); err != nil {
			return fmt.Errorf("store: delete %s run: %w", bucket, err)
		}
	}
	if err := putRun(b, versionKey(end), value); err != nil {
		return fmt.Errorf("store: put %s run at %d: %w", bucket, end, err)
	}
	return nil
}

// mergeRuns merges the runs srcs (of keys and versions), newest first, into one: for a key
// in several runs, the newest entry wins. Each source's entries are checked
// once, then merged by their offsets straight into the encoded run, a
// buffer of sc.
func mergeRuns(sc *scratch, srcs []run) ([]byte, error) {
	// A cursor holds no pointer that changes while merging, so that moving
	// it costs no write barrier.
	type cursor struct {
		ends, data []byte
		at         int    // offset in ends of the next entry's end
		from, to   uint32 // the head entry: data[from:to]
		done       bool
	}
	curs := make([]cursor, len(srcs))
	total, size := uint64(0), uint64(0)
	for i, r := range srcs {
		if err := checkStateRun(r); err != nil {
			return nil, err
		}
		curs[i] = cursor{ends: r.ends, data: r.data}
		total += r.count()
		size += uint64(len(r.data))
	}
	if size > math.MaxUint32 {
		return nil, fmt.Errorf("%w: %s run over 4 GiB", ErrInvalid, srcs[0].bucket)
	}
	next := func(c *cursor) {
		if c.at == len(c.ends) {
			c.done = true
			return
		}
		c.from, c.to = c.to, binary.BigEndian.Uint32(c.ends[c.at:])
		c.at += 4
	}
	key := func(c *cursor) []byte { return c.data[c.from : c.to-8] }
	for i := range curs {
		next(&curs[i])
	}
	// The run is written in place as if no key repeated; the entries are
	// moved down over the unused end offsets if some did.
	head := 4 + 4*total
	out := sc.get(int(head + size))[:head]
	ends := out[4:4]
	n := uint64(0)
	var ties []int
	for {
		best := -1
		ties = ties[:0]
		for i := range curs {
			c := &curs[i]
			if c.done {
				continue
			}
			if best < 0 {
				best = i
				continue
			}
			// Strictly less: on a tie the newer (earlier) run wins.
			switch cmp := bytes.Compare(key(c), key(&curs[best])); {
			case cmp < 0:
				best = i
				ties = ties[:0]
			case cmp == 0:
				ties = append(ties, i)
			}
		}
		if best < 0 {
			break
		}
		b := &curs[best]
		out = append(out, b.data[b.from:b.to]...)
		ends = binary.BigEndian.AppendUint32(ends, uint32(uint64(len(out))-head))
		n++
		next(b)
		for _, i := range ties {
			next(&curs[i])
		}
	}
	binary.BigEndian.PutUint32(out, uint32(n))
	if n < total {
		m := copy(out[4+4*n:], out[head:])
		out = out[:4+4*n+uint64(m)]
	}
	return out, nil
}

// checkStateRun checks every entry of the state run r: ascending end
// offsets within its data, each entry holding a key and its version.
func checkStateRun(r run) error {
	from := uint32(0)
	for i := uint64(0); i < r.count(); i++ {
		to := binary.BigEndian.Uint32(r.ends[4*i:])
		if uint64(to) < uint64(from)+9 || to-from > r.maxItem || uint64(to) > uint64(len(r.data)) {
			return fmt.Errorf("%w: %s key %s: entry %d has bounds [%d, %d)", ErrCorrupt, r.bucket, keyString(r.key), i, from, to)
		}
		from = to
	}
	return nil
}
