package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/chain/statetree"
)

// The state tree's buckets: tree_nodes holds the nodes (key
// NodeKey.AppendBinary, value Node.AppendBinary), tree_stale the nodes
// that stopped being part of the tree (key: the big-endian version since
// which, then the NodeKey; no value), so that a prune deletes them in key
// order. Both grow by version, like an append.
var (
	bucketTreeNodes = []byte("tree_nodes")
	bucketTreeStale = []byte("tree_stale")
)

// Node implements [statetree.NodeReader].
func (s *Store) Node(k statetree.NodeKey) (*statetree.Node, error) {
	var n *statetree.Node
	var kb [8 + 2 + 32]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketTreeNodes).Get(k.AppendBinary(kb[:0]))
		if raw == nil {
			return fmt.Errorf("%w: %d/%d", statetree.ErrNodeNotFound, k.Version, k.Depth)
		}
		var err error
		// raw is the file's mapped memory, valid only in this
		// transaction, and a parsed leaf aliases it.
		if n, err = statetree.ParseNode(bytes.Clone(raw)); err != nil {
			return fmt.Errorf("%w: tree node %d/%d: %w", ErrCorrupt, k.Version, k.Depth, err)
		}
		return nil
	})
	return n, err
}

// checkTree checks that the tree updates of a batch from version start to
// end have increasing versions in (start, end], the last at end if the
// batch appends anything.
func checkTree(b *ledger.Batch, start, end uint64) error {
	prev := start
	for i, tb := range b.Tree {
		if tb == nil || tb.Version <= prev || tb.Version > end {
			return fmt.Errorf("%w: tree update %d is nil or not at a version in (%d, %d]", ErrInvalid, i, prev, end)
		}
		prev = tb.Version
	}
	if end > start && prev != end {
		return fmt.Errorf("%w: the state tree ends at version %d, the batch at %d", ErrInvalid, prev, end)
	}
	return nil
}

// putTree writes the nodes and stale records of trees, each update's nodes
// in key order. bbolt keeps the keys and values it is given until the
// transaction ends, so each update is encoded into buffers of its own.
func putTree(tx *bolt.Tx, trees []*statetree.Batch) error {
	nodes, stale := tx.Bucket(bucketTreeNodes), tx.Bucket(bucketTreeStale)
	nodes.FillPercent, stale.FillPercent = appendFillPercent, appendFillPercent
	type span struct{ from, mid, to int } // key buf[from:mid], value buf[mid:to]
	for _, tb := range trees {
		var buf []byte
		spans := make([]span, len(tb.Nodes))
		for i, e := range tb.Nodes {
			spans[i].from = len(buf)
			buf = e.Key.AppendBinary(buf)
			spans[i].mid = len(buf)
			buf = e.Node.AppendBinary(buf)
			spans[i].to = len(buf)
		}
		slices.SortFunc(spans, func(a, b span) int { return bytes.Compare(buf[a.from:a.mid], buf[b.from:b.mid]) })
		for _, p := range spans {
			if err := nodes.Put(buf[p.from:p.mid:p.mid], buf[p.mid:p.to:p.to]); err != nil {
				return fmt.Errorf("store: put tree node: %w", err)
			}
		}
		// Stale records too go in key order: bbolt inserts into a page in
		// memory until the transaction commits, and an insert in the
		// middle of a large one moves the rest.
		const keySize = 8 + 2 + 32
		keys := make([]byte, 0, len(tb.Stale)*keySize)
		ends := make([]int, len(tb.Stale)+1)
		for i, s := range tb.Stale {
			keys = binary.BigEndian.AppendUint64(keys, s.StaleSince)
			keys = s.Key.AppendBinary(keys)
			ends[i+1] = len(keys)
		}
		order := make([]int, len(tb.Stale))
		for i := range order {
			order[i] = i
		}
		key := func(i int) []byte { return keys[ends[i]:ends[i+1]:ends[i+1]] }
		slices.SortFunc(order, func(a, b int) int { return bytes.Compare(key(a), key(b)) })
		for _, i := range order {
			if err := stale.Put(key(i), nil); err != nil {
				return fmt.Errorf("store: put stale tree node: %w", err)
			}
		}
	}
	return nil
}

// pruneTree deletes the tree nodes stale since version w or before, and
// their records: every tree of a version at or above w stays whole. It
// returns how many nodes it deleted.
func pruneTree(tx *bolt.Tx, w uint64) (int, error) {
	nodes, stale := tx.Bucket(bucketTreeNodes), tx.Bucket(bucketTreeStale)
	c := stale.Cursor()
	n := 0
	// A cursor's Next after a Delete may skip a key: start again from
	// the first record after each deletion.
	for k, _ := c.First(); k != nil; k, _ = c.First() {
		if len(k) < 8 || binary.BigEndian.Uint64(k) > w {
			break
		}
		if err := nodes.Delete(k[8:]); err != nil {
			return 0, fmt.Errorf("store: prune tree node: %w", err)
		}
		if err := c.Delete(); err != nil {
			return 0, fmt.Errorf("store: prune stale record: %w", err)
		}
		n++
	}
	return n, nil
}
