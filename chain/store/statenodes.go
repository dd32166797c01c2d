package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"

	bolt "go.etcd.io/bbolt"

	"github.com/p2pnode/p2pnode/chain/internal/prefixsort"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/chain/statetree"
)

// The state tree's buckets, one record per tree update (per version), each
// the value of a nested bucket named by the version, as the ledger's runs:
//
//	tree_nodes  version (8 bytes, big endian) -> node run
//	tree_stale  version                       -> the NodeKeys the update made stale
//
// A node run holds the nodes of one version, sorted by depth and path:
//
//	count (uint32) | per entry: its key's first 8 bytes and its offset
//	(uint32, from the run's start) | entries
//	entry: depth (uint16) | path ((depth+7)/8 bytes) | uvarint(len(node)) | Node.AppendBinary
//
// and a stale record the keys, each NodeKey.AppendBinary after its uvarint
// length. One record per update keeps a commit's writes to bbolt at two
// puts however many nodes it changes (per-node records cost about a
// microsecond each, more than hashing them), and a lookup is one get and a
// binary search.
var (
	bucketTreeNodes = []byte("tree_nodes")
	bucketTreeStale = []byte("tree_stale")
)

// firstKey positions c on its first key and returns it.
func firstKey(c *bolt.Cursor) []byte { k, _ := c.First(); return k }

// nodeRun is an encoded node run of a version.
type nodeRun struct {
	version uint64
	run     []byte
}

// Node implements [statetree.NodeReader]. The nodes of the run written
// last are read from memory: the next update of the tree reads its upper
// nodes there, and after a large update nearly all of them.
func (s *Store) Node(k statetree.NodeKey) (*statetree.Node, error) {
	if r := s.lastRun.Load(); r != nil && r.version == k.Version {
		raw, err := findNode(r.run, k)
		if err == nil && raw != nil {
			return statetree.ParseNode(raw) // r.run is never modified
		}
	}
	var n *statetree.Node
	err := s.view(func(tx *bolt.Tx) error {
		raw, err := lookupNode(tx.Bucket(bucketTreeNodes), k)
		if err != nil || raw == nil {
			return err
		}
		// raw is the file's mapped memory, valid only in this
		// transaction, and a parsed leaf aliases it.
		if n, err = statetree.ParseNode(bytes.Clone(raw)); err != nil {
			return fmt.Errorf("%w: tree node %d/%d: %w", ErrCorrupt, k.Version, k.Depth, err)
		}
		return nil
	})
	if err == nil && n == nil {
		err = fmt.Errorf("%w: %d/%d", statetree.ErrNodeNotFound, k.Version, k.Depth)
	}
	return n, err
}

// posKey appends to b the part of k's encoding after its version: depth
// and path.
func posKey(b []byte, k statetree.NodeKey) []byte {
	n := len(b)
	b = k.AppendBinary(b)
	return append(b[:n], b[n+8:]...)
}

// findNode returns the encoded node of k in run, nil if run has none. It
// searches the table of key prefixes (fixed-size integers, next to each
// other in memory) and compares whole keys only among equal prefixes.
func findNode(run []byte, k statetree.NodeKey) ([]byte, error) {
	if run == nil {
		return nil, nil
	}
	var kb [2 + 32]byte
	want := posKey(kb[:0], k)
	wp := keyPrefix(want)
	count, err := runCount(run)
	if err != nil {
		return nil, err
	}
	i := sort.Search(count, func(i int) bool { return runPrefix(run, i) >= wp })
	for ; i < count && runPrefix(run, i) == wp; i++ {
		key, node, err := runEntry(run, i)
		if err != nil {
			return nil, err
		}
		switch bytes.Compare(key, want) {
		case 0:
			return node, nil
		case 1:
			return nil, nil
		}
	}
	return nil, nil
}

// runSlot is the size of an entry's slot in a run's table: the first 8
// bytes of its position key, then its offset.
const runSlot = 8 + 4

// keyPrefix is the first 8 bytes of a position key, zero-padded, as an
// integer: position keys in byte order have prefixes in integer order.
func keyPrefix(key []byte) uint64 {
	var p [8]byte
	copy(p[:], key)
	return binary.BigEndian.Uint64(p[:])
}

func runCount(run []byte) (int, error) {
	if len(run) < 4 {
		return 0, fmt.Errorf("%w: tree node run of %d bytes", ErrCorrupt, len(run))
	}
	n := int(binary.BigEndian.Uint32(run))
	if n == 0 || len(run) < 4+runSlot*n {
		return 0, fmt.Errorf("%w: tree node run of %d bytes for %d nodes", ErrCorrupt, len(run), n)
	}
	return n, nil
}

// runPrefix returns the key prefix of entry i (i < runCount).
func runPrefix(run []byte, i int) uint64 { return binary.BigEndian.Uint64(run[4+runSlot*i:]) }

// runEntry returns the position key and the encoded node of entry i.
func runEntry(run []byte, i int) (key, node []byte, err error) {
	off := int(binary.BigEndian.Uint32(run[4+runSlot*i+8:]))
	if off+2 > len(run) {
		return nil, nil, fmt.Errorf("%w: tree node run entry %d out of range", ErrCorrupt, i)
	}
	depth := int(binary.BigEndian.Uint16(run[off:]))
	end := off + 2 + (depth+7)/8
	if depth > statetree.MaxDepth || end > len(run) {
		return nil, nil, fmt.Errorf("%w: tree node run entry %d of depth %d", ErrCorrupt, i, depth)
	}
	size, n := binary.Uvarint(run[end:])
	if n <= 0 || size > uint64(len(run)-end-n) {
		return nil, nil, fmt.Errorf("%w: tree node run entry %d has a bad size", ErrCorrupt, i)
	}
	return run[off:end:end], run[end+n : end+n+int(size) : end+n+int(size)], nil
}

// encodeRun encodes nodes (of one version, positions distinct) as a run,
// in one allocation of its exact size: runs reach tens of megabytes in a
// sync, where growing the buffer cost more than encoding it.
func encodeRun(nodes []statetree.NodeEntry) []byte {
	type entry struct {
		prefix uint64 // the position key's first 8 bytes
		node   int
	}
	entries := make([]entry, len(nodes))
	size := 4 + runSlot*len(nodes)
	var kb [2 + 32]byte
	for i, e := range nodes {
		k := posKey(kb[:0], e.Key)
		entries[i] = entry{prefix: keyPrefix(k), node: i}
		n := nodeSize(e.Node)
		size += len(k) + uvarintSize(uint64(n)) + n
	}
	entries = prefixsort.Stable(entries, func(e *entry) uint64 { return e.prefix })
	var ka, kb2 [2 + 32]byte
	for from := 0; from < len(entries); {
		to := from + 1
		for to < len(entries) && entries[to].prefix == entries[from].prefix {
			to++
		}
		if to-from > 1 {
			slices.SortFunc(entries[from:to], func(a, b entry) int {
				return bytes.Compare(posKey(ka[:0], nodes[a.node].Key), posKey(kb2[:0], nodes[b.node].Key))
			})
		}
		from = to
	}
	run := make([]byte, 4+runSlot*len(entries), size)
	binary.BigEndian.PutUint32(run, uint32(len(entries)))
	for i, e := range entries {
		binary.BigEndian.PutUint64(run[4+runSlot*i:], e.prefix)
		binary.BigEndian.PutUint32(run[4+runSlot*i+8:], uint32(len(run)))
		n := nodes[e.node]
		run = posKey(run, n.Key)
		run = binary.AppendUvarint(run, uint64(nodeSize(n.Node)))
		run = n.Node.AppendBinary(run)
	}
	return run
}

// nodeSize is the length of n.AppendBinary.
func nodeSize(n *statetree.Node) int {
	switch n.Kind {
	case statetree.KindLeaf:
		k := len(n.Leaf.Key)
		return 1 + 2*32 + uvarintSize(uint64(k)) + k + len(n.Leaf.Value)
	case statetree.KindInternal:
		size := 1
		for _, c := range [2]statetree.Child{n.Left, n.Right} {
			size++
			if c.Kind != statetree.KindNull {
				size += uvarintSize(c.Version) + 32
			}
		}
		return size
	}
	return 1
}

func uvarintSize(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// checkTree checks that the tree updates of a batch ending at version end
// have increasing versions above the stored tree's, at most end.
func checkTree(b *ledger.Batch, treeVersion, end uint64) error {
	prev := treeVersion
	for i, tb := range b.Tree {
		if tb == nil || tb.Version <= prev || tb.Version > end {
			return fmt.Errorf("%w: tree update %d is nil or not at a version in (%d, %d]", ErrInvalid, i, prev, end)
		}
		prev = tb.Version
	}
	return nil
}

// putTree writes the node run and the stale record of each update of
// trees, and returns the last run written (nil if none).
func putTree(tx *bolt.Tx, trees []*statetree.Batch) (*nodeRun, error) {
	var last *nodeRun
	nodes, stale := tx.Bucket(bucketTreeNodes), tx.Bucket(bucketTreeStale)
	nodes.FillPercent, stale.FillPercent = appendFillPercent, appendFillPercent
	for _, tb := range trees {
		for _, e := range tb.Nodes {
			if e.Key.Version != tb.Version {
				return nil, fmt.Errorf("%w: tree update of version %d writes a node of version %d", ErrInvalid, tb.Version, e.Key.Version)
			}
		}
		if len(tb.Nodes) > 0 {
			last = &nodeRun{version: tb.Version, run: encodeRun(tb.Nodes)}
			if err := putRun(nodes, versionKey(tb.Version), last.run); err != nil {
				return nil, fmt.Errorf("store: put tree nodes of version %d: %w", tb.Version, err)
			}
		}
		if len(tb.Stale) > 0 {
			var rec []byte
			for _, s := range tb.Stale {
				if s.StaleSince != tb.Version {
					return nil, fmt.Errorf("%w: tree update of version %d makes a node stale since %d", ErrInvalid, tb.Version, s.StaleSince)
				}
				k := s.Key.AppendBinary(nil)
				rec = binary.AppendUvarint(rec, uint64(len(k)))
				rec = append(rec, k...)
			}
			if err := putRun(stale, versionKey(tb.Version), rec); err != nil {
				return nil, fmt.Errorf("store: put stale tree nodes of version %d: %w", tb.Version, err)
			}
		}
	}
	return last, nil
}

// pruneTree deletes the tree nodes stale since version w or before, and
// their records: every tree of a version at or above w stays whole. The
// runs that lose nodes are written again without them, or deleted when
// empty. It returns how many nodes it deleted.
func pruneTree(tx *bolt.Tx, w uint64) (int, error) {
	nodes, stale := tx.Bucket(bucketTreeNodes), tx.Bucket(bucketTreeStale)
	doomed := make(map[uint64][]statetree.NodeKey) // by the version of their run
	var records [][]byte
	c := newRunCursor(stale)
	for k, v := c.value(firstKey(c.c)); k != nil && len(k) == 8 && binary.BigEndian.Uint64(k) <= w; k, v = c.next() {
		records = append(records, bytes.Clone(k))
		for len(v) > 0 {
			size, n := binary.Uvarint(v)
			if n <= 0 || size > uint64(len(v)-n) {
				return 0, fmt.Errorf("%w: stale tree record %d", ErrCorrupt, binary.BigEndian.Uint64(k))
			}
			nk, err := statetree.ParseNodeKey(v[n : n+int(size)])
			if err != nil {
				return 0, fmt.Errorf("%w: stale tree record %d: %w", ErrCorrupt, binary.BigEndian.Uint64(k), err)
			}
			doomed[nk.Version] = append(doomed[nk.Version], nk)
			v = v[n+int(size):]
		}
	}
	deleted := 0
	for version, keys := range doomed {
		vb := nodes.Bucket(versionKey(version))
		if vb == nil {
			continue
		}
		if vb.Get(runKey) == nil { // a restored snapshot's records
			n, err := pruneChunks(vb, version, keys)
			if err != nil {
				return 0, err
			}
			deleted += n
			continue
		}
		keep, n, err := runWithout(vb.Get(runKey), version, keys)
		if err == nil && n > 0 {
			deleted += n
			// The nested bucket goes, and comes back with what stays.
			err = nodes.DeleteBucket(versionKey(version))
			if err == nil && len(keep) > 0 {
				err = putRun(nodes, versionKey(version), encodeRun(keep))
			}
		}
		if err != nil {
			return 0, fmt.Errorf("store: prune tree nodes of version %d: %w", version, err)
		}
	}
	for _, k := range records {
		if err := stale.DeleteBucket(k); err != nil {
			return 0, fmt.Errorf("store: prune stale tree record: %w", err)
		}
	}
	return deleted, nil
}

// runWithout returns the nodes of run, of version, but those of keys, and
// how many of keys it held.
func runWithout(run []byte, version uint64, keys []statetree.NodeKey) ([]statetree.NodeEntry, int, error) {
	count, err := runCount(run)
	if err != nil {
		return nil, 0, err
	}
	gone := make(map[string]bool, len(keys))
	for _, k := range keys {
		gone[string(posKey(nil, k))] = true
	}
	var keep []statetree.NodeEntry
	deleted := 0
	for i := range count {
		key, node, err := runEntry(run, i)
		if err != nil {
			return nil, 0, err
		}
		if gone[string(key)] {
			deleted++
			continue
		}
		nk, err := statetree.ParseNodeKey(append(versionKey(version), key...))
		if err != nil {
			return nil, 0, fmt.Errorf("%w: tree node run %d: %w", ErrCorrupt, version, err)
		}
		n, err := statetree.ParseNode(bytes.Clone(node))
		if err != nil {
			return nil, 0, fmt.Errorf("%w: tree node run %d: %w", ErrCorrupt, version, err)
		}
		keep = append(keep, statetree.NodeEntry{Key: nk, Node: n})
	}
	return keep, deleted, nil
}

// pruneChunks deletes keys from the records of the restored snapshot of
// version vb, rewriting each record that loses some.
func pruneChunks(vb *bolt.Bucket, version uint64, keys []statetree.NodeKey) (int, error) {
	byRecord := make(map[string][]statetree.NodeKey)
	for _, k := range keys {
		for _, rk := range chunkCandidates(vb, subtreeEnd(k)) {
			sub := vb.Bucket(rk)
			if sub == nil {
				continue
			}
			if raw, err := findNode(sub.Get(runKey), k); err != nil {
				return 0, err
			} else if raw != nil {
				byRecord[string(rk)] = append(byRecord[string(rk)], k)
				break
			}
		}
	}
	deleted := 0
	for rk, ks := range byRecord {
		keep, n, err := runWithout(vb.Bucket([]byte(rk)).Get(runKey), version, ks)
		if err == nil {
			deleted += n
			err = vb.DeleteBucket([]byte(rk))
		}
		if err == nil && len(keep) > 0 {
			err = putRun(vb, []byte(rk), encodeRun(keep))
		}
		if err != nil {
			return 0, fmt.Errorf("store: prune snapshot nodes of version %d: %w", version, err)
		}
	}
	return deleted, nil
}
