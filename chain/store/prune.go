package store

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	bolt "go.etcd.io/bbolt"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/ledger"
)

// Pruning deletes the history below a version W: the transactions of
// versions below W (whole tx runs, with their node runs), the archived
// blocks whose transactions start below W, and the runs of the index by
// hash that end at or below W. What the node still needs of it stays:
//
//   - the state: a key whose latest write is below W keeps its value in
//     the state_values bucket (key -> version | value), which a lookup
//     reads when the key's newest entry names a pruned version;
//   - the accumulator: the frontier of W (the compact range of [0, W)),
//     kept in the pruned record, is every node wholly below W that a chunk
//     proof from a version at or above W, or an audit path of a
//     transaction at or above W, needs. The nodes that straddle W are
//     completed by a leaf at or above W and stay in their runs, but for
//     the one of level 1 over versions W-1 and W when W is odd: runs do
//     not store level 1, which is hashed again from its two transactions,
//     so the pruned record keeps it too (and W is below the committed
//     version when odd, so that it exists).
//
// The prune is one transaction: a crash leaves the history before or after
// it. Reads of what it deleted fail with ledger.ErrPruned.

// prunedRecord is the pruned record of the ledger bucket: the first
// version kept and the frontier of the accumulator of that size.
type prunedRecord struct {
	_        struct{} `cbor:",toarray"`
	Version  uint64
	Frontier []chain.Hash
	// Straddle is node (1, Version/2) when Version is odd.
	Straddle chain.Hash
}

// straddles reports whether id is the node of level 1 over the last
// version pruned and the first kept.
func (rec prunedRecord) straddles(id compact.NodeID) bool {
	return rec.Version%2 == 1 && id.Level == 1 && id.Index == rec.Version/2
}

var keyPruned = []byte("pruned")

// readPruned returns the pruned record; the zero record if nothing was
// pruned.
func readPruned(tx *bolt.Tx) (prunedRecord, error) {
	var rec prunedRecord
	raw := tx.Bucket(bucketLedger).Get(keyPruned)
	if raw == nil {
		return rec, nil
	}
	if err := decodeValue(bucketLedger, keyPruned, raw, maxCommittedSize, &rec); err != nil {
		return rec, err
	}
	if len(rec.Frontier) != frontierSize(rec.Version) {
		return rec, fmt.Errorf("%w: pruned at version %d with a frontier of %d hashes", ErrCorrupt, rec.Version, len(rec.Frontier))
	}
	return rec, nil
}

// prunedNode returns the hash of node id, wholly below rec.Version, if it
// is one of the kept frontier's.
func (rec prunedRecord) node(id compact.NodeID) (chain.Hash, bool) {
	for i, fid := range compact.RangeNodes(0, rec.Version, nil) {
		if fid == id {
			return rec.Frontier[i], true
		}
	}
	return chain.Hash{}, false
}

// Earliest returns the first version whose transaction the store keeps: 0
// unless it pruned. Safe for concurrent use.
func (s *Store) Earliest() (uint64, error) {
	var rec prunedRecord
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		rec, err = readPruned(tx)
		return err
	})
	return rec.Version, err
}

// Prune deletes the history below a version at most before (see above),
// and never past the state tree's version: the largest version at or
// below both at which a tx run starts (below the committed version if
// odd). It returns the first
// version kept, which may be the one kept already if no run lies wholly
// below before. Safe for concurrent use.
func (s *Store) Prune(before uint64) (uint64, error) {
	var w uint64
	err := s.update(func(tx *bolt.Tx) error {
		var err error
		w, err = prune(tx, before)
		return err
	})
	if err != nil {
		return 0, err
	}
	s.idx.prunedTo(w)
	return w, nil
}

func prune(tx *bolt.Tx, before uint64) (uint64, error) {
	c, err := readCommitted(tx)
	if err != nil {
		return 0, err
	}
	old, err := readPruned(tx)
	if err != nil {
		return 0, err
	}
	// The state tree follows the transactions from its version on, read
	// back from the store: none of them may go before it has.
	before = min(before, c.Version, c.TreeVersion)
	// The runs wholly below before, and the last even end among them.
	txs := tx.Bucket(bucketTxs)
	var doomed [][]byte
	w := old.Version
	cur := newRunCursor(txs)
	for k, v := cur.c.First(); k != nil; k, v = cur.c.Next() {
		_, v = cur.value(k)
		r, first, err := txRun(k, v)
		if err != nil {
			return 0, err
		}
		end := first + r.count()
		if end > before || (end%2 == 1 && end >= c.Version) {
			break
		}
		doomed = append(doomed, bytes.Clone(k))
		w = end
	}
	if w <= old.Version {
		return old.Version, nil
	}

	// Read what must stay, before deleting.
	rec := prunedRecord{Version: w}
	nodes := newRunCursor(tx.Bucket(bucketNodes))
	for _, id := range compact.RangeNodes(0, w, nil) {
		h, err := nodeAt(tx, nodes, id, c.Version, old)
		if err != nil {
			return 0, err
		}
		rec.Frontier = append(rec.Frontier, h)
	}
	if w%2 == 1 {
		id := compact.NewNodeID(1, w/2)
		if rec.Straddle, err = nodeAt(tx, nodes, id, c.Version, old); err != nil {
			return 0, err
		}
	}
	if err := keepStateValues(tx, old.Version, w); err != nil {
		return 0, err
	}

	nb := tx.Bucket(bucketNodes)
	for _, k := range doomed {
		if err := txs.DeleteBucket(k); err != nil {
			return 0, fmt.Errorf("store: prune transactions at %s: %w", keyString(k), err)
		}
		if nb.Bucket(k) != nil {
			if err := nb.DeleteBucket(k); err != nil {
				return 0, fmt.Errorf("store: prune accumulator nodes at %s: %w", keyString(k), err)
			}
		}
	}
	if err := pruneArchive(tx, w); err != nil {
		return 0, err
	}
	if _, err := pruneTree(tx, w); err != nil {
		return 0, err
	}
	hb := tx.Bucket(bucketTxHashes)
	var runs [][]byte
	hc := hb.Cursor()
	for k, _ := hc.First(); k != nil && len(k) == 8 && binary.BigEndian.Uint64(k) <= w; k, _ = hc.Next() {
		runs = append(runs, bytes.Clone(k))
	}
	for _, k := range runs {
		if err := hb.DeleteBucket(k); err != nil {
			return 0, fmt.Errorf("store: prune %s run %s: %w", bucketTxHashes, keyString(k), err)
		}
	}
	if err := putValue(tx, bucketLedger, keyPruned, &rec); err != nil {
		return 0, err
	}
	return w, nil
}

// keepStateValues copies into state_values the value of every state entry
// naming a version in [from, to): the entries below from were copied by an
// earlier prune. An entry shadowed by a newer one of its key is copied
// too, unless the bucket holds a later version of the key already: cheaper
// than finding the newest entry of each key, and never read.
func keepStateValues(tx *bolt.Tx, from, to uint64) error {
	vals := tx.Bucket(bucketStateValues)
	c := newRunCursor(tx.Bucket(bucketState))
	for k, v := c.last(); k != nil; k, v = c.prev() {
		r, err := decodeRun(bucketState, k, v, maxStateEntry)
		if err != nil {
			return err
		}
		for i := range r.count() {
			e, err := stateEntry(r, i)
			if err != nil {
				return err
			}
			version := binary.BigEndian.Uint64(e[len(e)-8:])
			if version < from || version >= to {
				continue
			}
			key := entryKey(e)
			if old := vals.Get(key); len(old) >= 8 && binary.BigEndian.Uint64(old) >= version {
				continue
			}
			t, err := txAt(tx, version)
			if err != nil {
				return err
			}
			k, val, err := chain.DecodeKV(t)
			if err != nil || !bytes.Equal(k, key) {
				return fmt.Errorf("%w: state key %x names version %d, which does not write it", ErrCorrupt, key, version)
			}
			rec := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(val)), version)
			if err := vals.Put(bytes.Clone(key), append(rec, val...)); err != nil {
				return fmt.Errorf("store: keep the value of state key %x: %w", key, err)
			}
		}
	}
	return nil
}

// keptValue returns the value state_values keeps for key, written at
// version.
func keptValue(tx *bolt.Tx, key []byte, version uint64) ([]byte, error) {
	rec := tx.Bucket(bucketStateValues).Get(key)
	if len(rec) < 8 || binary.BigEndian.Uint64(rec) != version {
		return nil, fmt.Errorf("%w: state key %x names pruned version %d, whose value is not kept", ErrCorrupt, key, version)
	}
	return bytes.Clone(rec[8:]), nil
}

// pruneArchive deletes the archived blocks whose transactions start below
// w, oldest first, with their ids.
func pruneArchive(tx *bolt.Tx, w uint64) error {
	arch, ids := tx.Bucket(bucketArchive), tx.Bucket(bucketArchiveIDs)
	var doomed [][]byte
	c := arch.Cursor()
	for k, raw := c.First(); k != nil; k, raw = c.Next() {
		var rec archivedBlock
		if err := decodeValue(bucketArchive, k, raw, chain.MaxEncodedBlockSize, &rec); err != nil {
			return err
		}
		if rec.Header == nil || rec.TxCount > rec.Info.Version {
			return fmt.Errorf("%w: archived block at %s is malformed", ErrCorrupt, keyString(k))
		}
		if rec.Info.Version-rec.TxCount >= w {
			break
		}
		id := rec.Header.ID
		if err := ids.Delete(id[:]); err != nil {
			return fmt.Errorf("store: prune block %s: %w", id.Short(), err)
		}
		doomed = append(doomed, bytes.Clone(k))
	}
	for _, k := range doomed {
		if err := arch.Delete(k); err != nil {
			return fmt.Errorf("store: prune archived block at %s: %w", keyString(k), err)
		}
	}
	return nil
}

// prunedTo drops the tail's entries below w.
func (t *txTail) prunedTo(w uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.advance(w)
}

// advance drops the tail's entries below version v, into a new slice (a
// lookup may scan the old one). The caller holds mu.
func (t *txTail) advance(v uint64) {
	if v <= t.from {
		return
	}
	rest := t.hashes[min(v-t.from, uint64(len(t.hashes))):]
	t.from, t.hashes = v, append(make([]chain.Hash, 0, max(txIndexRun, len(rest))), rest...)
}

// errPruned is the error of a read below the first version kept.
func errPruned(what string, v, w uint64) error {
	return fmt.Errorf("%w: %s %d, the store keeps versions from %d", ledger.ErrPruned, what, v, w)
}
