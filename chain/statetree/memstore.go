package statetree

import (
	"fmt"
	"sync"
)

// MemStore keeps nodes in memory: the storage of tests and benchmarks, and,
// laid over a durable store with [NewOverlay], of speculative updates that
// are not committed yet. It is safe for concurrent use.
type MemStore struct {
	mu    sync.RWMutex
	nodes map[NodeKey]*Node
	stale []StaleNode
}

// NewMemStore returns an empty store.
func NewMemStore() *MemStore { return &MemStore{nodes: make(map[NodeKey]*Node)} }

// Node implements [NodeReader].
func (m *MemStore) Node(k NodeKey) (*Node, error) {
	m.mu.RLock()
	n, ok := m.nodes[k]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: %d/%d", ErrNodeNotFound, k.Version, k.Depth)
	}
	return n, nil
}

// Apply stores the nodes of b and records its stale nodes.
func (m *MemStore) Apply(b *Batch) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range b.Nodes {
		m.nodes[e.Key] = e.Node
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
			if _, ok := m.nodes[s.Key]; ok {
				delete(m.nodes, s.Key)
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
	return len(m.nodes)
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
	o.mem.mu.RLock()
	n, ok := o.mem.nodes[k]
	o.mem.mu.RUnlock()
	if ok {
		return n, nil
	}
	return o.base.Node(k)
}

// Nodes returns the nodes written by version, for tests and tools.
func (m *MemStore) Nodes(version uint64) []*Node {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []*Node
	for k, n := range m.nodes {
		if k.Version == version {
			out = append(out, n)
		}
	}
	return out
}
