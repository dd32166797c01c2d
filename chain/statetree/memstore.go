package statetree

import (
	"fmt"
	"sync"
)

// MemStore keeps nodes in memory: the storage of tests and benchmarks, and,
// laid over a durable store with [NewOverlay], of speculative updates that
// are not committed yet. Like a durable store it keeps nodes encoded
// ([Node.AppendBinary]) and decodes them on each read, in an arena of
// blocks without pointers: a store of millions of nodes costs the garbage
// collector nothing to scan. Pruned nodes leave the index, not the arena.
// It is safe for concurrent use.
type MemStore struct {
	mu     sync.RWMutex
	idx    map[NodeKey]uint64 // block<<48 | offset<<24 | length
	blocks [][]byte
	stale  []StaleNode
}

const memBlockSize = 1 << 24

// NewMemStore returns an empty store.
func NewMemStore() *MemStore { return &MemStore{idx: make(map[NodeKey]uint64)} }

// Node implements [NodeReader].
func (m *MemStore) Node(k NodeKey) (*Node, error) {
	n, ok, err := m.get(k)
	if !ok {
		return nil, fmt.Errorf("%w: %d/%d", ErrNodeNotFound, k.Version, k.Depth)
	}
	return n, err
}

func (m *MemStore) get(k NodeKey) (*Node, bool, error) {
	b, ok := m.lookup(k)
	if !ok {
		return nil, false, nil
	}
	n, err := ParseNode(b)
	return n, true, err
}

// read is get without allocating: the node is returned by value, a leaf's
// Leaf taken from leaves.
func (m *MemStore) read(k NodeKey, leaves *leafSlab) (Node, bool, error) {
	var n Node
	b, ok := m.lookup(k)
	if !ok {
		return n, false, nil
	}
	return n, true, parseNode(b, &n, leaves)
}

// lookup returns the encoding of the node under k.
func (m *MemStore) lookup(k NodeKey) ([]byte, bool) {
	m.mu.RLock()
	loc, ok := m.idx[k]
	var b []byte
	if ok {
		blk, off, n := loc>>48, loc>>24&(1<<24-1), loc&(1<<24-1)
		b = m.blocks[blk][off : off+n : off+n]
	}
	m.mu.RUnlock()
	return b, ok
}

// Apply stores the nodes of b and records its stale nodes.
func (m *MemStore) Apply(b *Batch) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range b.Nodes {
		last := len(m.blocks) - 1
		enc := e.Node.AppendBinary(nil)
		if last < 0 || len(m.blocks[last])+len(enc) > cap(m.blocks[last]) {
			// Blocks grow from 64 KiB, so that a small overlay stays small.
			size := 64 << 10
			if last >= 0 {
				size = min(2*cap(m.blocks[last]), memBlockSize)
			}
			m.blocks = append(m.blocks, make([]byte, 0, max(size, len(enc))))
			last++
		}
		off := len(m.blocks[last])
		m.blocks[last] = append(m.blocks[last], enc...)
		m.idx[e.Key] = uint64(last)<<48 | uint64(off)<<24 | uint64(len(enc))
	}
	m.stale = append(m.stale, b.Stale...)
}

// Prune deletes the nodes that no version at or above keep needs: those
// stale since a version at or below keep. It returns how many it deleted.
func (m *MemStore) Prune(keep uint64) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	rest := m.stale[:0]
	for _, s := range m.stale {
		if s.StaleSince <= keep {
			if _, ok := m.idx[s.Key]; ok {
				delete(m.idx, s.Key)
				n++
			}
			continue
		}
		rest = append(rest, s)
	}
	m.stale = rest
	return n
}

// Len returns the number of stored nodes.
func (m *MemStore) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.idx)
}

// Nodes returns the nodes written by version, for tests and tools.
func (m *MemStore) Nodes(version uint64) []*Node {
	m.mu.RLock()
	var keys []NodeKey
	for k := range m.idx {
		if k.Version == version {
			keys = append(keys, k)
		}
	}
	m.mu.RUnlock()
	out := make([]*Node, 0, len(keys))
	for _, k := range keys {
		if n, err := m.Node(k); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// Overlay reads the nodes of uncommitted batches before those of a base
// store: the tree of a speculatively executed block is readable (and can be
// updated again, for its child) before the block commits.
type Overlay struct {
	base NodeReader
	mem  *MemStore
}

// NewOverlay returns an overlay of batches over base, holding none yet.
func NewOverlay(base NodeReader) *Overlay { return &Overlay{base: base, mem: NewMemStore()} }

// Add lays b over the overlay.
func (o *Overlay) Add(b *Batch) { o.mem.Apply(b) }

// Node implements [NodeReader].
func (o *Overlay) Node(k NodeKey) (*Node, error) {
	if n, ok, err := o.mem.get(k); ok {
		return n, err
	}
	return o.base.Node(k)
}

// readNode reads the node under k from r as [NodeReader.Node] does, but
// without allocating from this package's stores (a leaf's Leaf is taken
// from leaves): most of an update's time went into those allocations.
func readNode(r NodeReader, k NodeKey, leaves *leafSlab) (Node, error) {
	switch r := r.(type) {
	case *MemStore:
		n, ok, err := r.read(k, leaves)
		if !ok {
			return n, fmt.Errorf("%w: %d/%d", ErrNodeNotFound, k.Version, k.Depth)
		}
		return n, err
	case *Overlay:
		if n, ok, err := r.mem.read(k, leaves); ok {
			return n, err
		}
		return readNode(r.base, k, leaves)
	}
	p, err := r.Node(k)
	if err != nil {
		return Node{}, err
	}
	return *p, nil
}
