package statetree

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math/bits"
	"sync"

	"github.com/p2pnode/p2pnode/chain"
)

// MemStore keeps nodes in memory: the storage of tests and benchmarks, and,
// laid over a durable store with [NewOverlay], of speculative updates that
// are not committed yet. Like a durable store it keeps nodes encoded
// ([Node.AppendBinary]) and decodes them on each read, in an arena of
// blocks without pointers: a store of millions of nodes costs the garbage
// collector nothing to scan. Pruned nodes leave the index, not the arena.
// It is safe for concurrent use.
//
// The index is an open-addressing table of 8-byte slots, each the position
// of an entry in the arena and some bits of its key's hash; the entry
// holds the key (in the form of [NodeKey.AppendBinary]) before the node.
// A read in a large store thus costs two cache misses, the slot and the
// entry, where a Go map of NodeKey cost about four, and 60 bytes a node.
type MemStore struct {
	mu     sync.RWMutex
	seed   maphash.Seed
	slots  []uint64 // tag<<40 | block<<24 | offset; 0 is empty
	shift  uint     // a key's first slot is its hash >> shift
	n      int      // keys in slots
	odd    map[NodeKey][]byte
	blocks [][]byte
	buf    []byte
	stale  []StaleNode
}

// odd keeps the nodes of keys with path bits past their depth, or a depth
// past MaxDepth, which the arena's form of a key cannot hold. The tree
// never makes such keys; a store keeps them apart from the others, as a
// map of NodeKey did.

const memBlockSize = 1 << 24

// NewMemStore returns an empty store.
func NewMemStore() *MemStore { return &MemStore{seed: maphash.MakeSeed()} }

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
	defer m.mu.RUnlock()
	if i, ok := m.find(&k, m.hash(&k)); ok {
		_, b := m.entry(m.slots[i])
		return b, true
	}
	if m.odd != nil {
		b, ok := m.odd[k]
		return b, ok
	}
	return nil, false
}

// hash returns the hash of k, of which the top bits give its first slot
// and the low bits its tag.
func (m *MemStore) hash(k *NodeKey) uint64 {
	var b [8 + 2 + chain.HashSize]byte
	binary.LittleEndian.PutUint64(b[:], k.Version)
	binary.LittleEndian.PutUint16(b[8:], k.Depth)
	copy(b[10:], k.Path[:])
	return maphash.Bytes(m.seed, b[:])
}

// tag returns the bits of h kept in a slot, never zero.
func tag(h uint64) uint64 { return (h&(1<<23-1) | 1<<23) << 40 }

// find returns the slot of k, whose hash is h, or false and the empty slot
// where it would go (-1 if there are no slots).
func (m *MemStore) find(k *NodeKey, h uint64) (int, bool) {
	if len(m.slots) == 0 {
		return -1, false
	}
	t, mask := tag(h), len(m.slots)-1
	for i := int(h >> m.shift); ; i = (i + 1) & mask {
		s := m.slots[i]
		if s == 0 {
			return i, false
		}
		if s&^(1<<40-1) == t {
			if ek, _ := m.entry(s); ek == *k {
				return i, true
			}
		}
	}
}

// entry returns the key and the node encoding of the entry of slot s.
func (m *MemStore) entry(s uint64) (NodeKey, []byte) {
	b := m.blocks[s>>24&(1<<16-1)][s&(1<<24-1):]
	var k NodeKey
	k.Version = binary.BigEndian.Uint64(b)
	k.Depth = binary.BigEndian.Uint16(b[8:])
	b = b[10:]
	b = b[copy(k.Path[:(int(k.Depth)+7)/8], b):]
	n, w := binary.Uvarint(b)
	return k, b[w : w+int(n) : w+int(n)]
}

// home returns the first slot of the key of slot s.
func (m *MemStore) home(s uint64) int {
	k, _ := m.entry(s)
	return int(m.hash(&k) >> m.shift)
}

// reserve makes room for n more keys, at most three quarters of the slots
// in use, so that probe sequences stay short.
func (m *MemStore) reserve(n int) {
	size := len(m.slots)
	for 4*(m.n+n) > 3*size {
		size = max(2*size, 64)
	}
	if size == len(m.slots) {
		return
	}
	old := m.slots
	m.slots, m.shift = make([]uint64, size), uint(64-bits.TrailingZeros(uint(size)))
	mask := size - 1
	for _, s := range old {
		if s == 0 {
			continue
		}
		i := m.home(s)
		for m.slots[i] != 0 {
			i = (i + 1) & mask
		}
		m.slots[i] = s
	}
}

// remove empties slot i, moving back the keys after it that could not
// take their first slot because of it (no tombstones: a table of a pruned
// store does not fill up with them).
func (m *MemStore) remove(i int) {
	mask := len(m.slots) - 1
	for j := i; ; {
		m.slots[i] = 0
		for {
			j = (j + 1) & mask
			s := m.slots[j]
			if s == 0 {
				m.n--
				return
			}
			// s moves to i unless its first slot is cyclically in (i, j].
			h := m.home(s)
			if i <= j && (h <= i || j < h) || j < i && h <= i && j < h {
				m.slots[i], i = s, j
				break
			}
		}
	}
}

// Apply stores the nodes of b and records its stale nodes.
func (m *MemStore) Apply(b *Batch) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reserve(len(b.Nodes))
	for _, e := range b.Nodes {
		m.buf = e.Node.AppendBinary(m.buf[:0])
		k := e.Key
		if k.Depth > MaxDepth || prefix(k.Path, int(k.Depth)) != k.Path {
			if m.odd == nil {
				m.odd = make(map[NodeKey][]byte)
			}
			m.odd[k] = append([]byte(nil), m.buf...)
			continue
		}
		size := 10 + (int(k.Depth)+7)/8 + uvarintLen(len(m.buf)) + len(m.buf)
		last := len(m.blocks) - 1
		if last < 0 || len(m.blocks[last])+size > cap(m.blocks[last]) {
			// Blocks grow from 64 KiB, so that a small overlay stays small.
			bs := 64 << 10
			if last >= 0 {
				bs = min(2*cap(m.blocks[last]), memBlockSize)
			}
			m.blocks = append(m.blocks, make([]byte, 0, max(bs, size)))
			last++
		}
		off := len(m.blocks[last])
		blk := k.AppendBinary(m.blocks[last])
		blk = binary.AppendUvarint(blk, uint64(len(m.buf)))
		m.blocks[last] = append(blk, m.buf...)
		h := m.hash(&k)
		i, ok := m.find(&k, h)
		if !ok {
			m.n++
		}
		m.slots[i] = tag(h) | uint64(last)<<24 | uint64(off)
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
			if i, ok := m.find(&s.Key, m.hash(&s.Key)); ok {
				m.remove(i)
				n++
			} else if _, ok := m.odd[s.Key]; ok {
				delete(m.odd, s.Key)
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
	return m.n + len(m.odd)
}

// Nodes returns the nodes written by version, for tests and tools.
func (m *MemStore) Nodes(version uint64) []*Node {
	m.mu.RLock()
	var keys []NodeKey
	for _, s := range m.slots {
		if s == 0 {
			continue
		}
		if k, _ := m.entry(s); k.Version == version {
			keys = append(keys, k)
		}
	}
	for k := range m.odd {
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

// uvarintLen returns the length of the uvarint of n.
func uvarintLen(n int) int { return (bits.Len64(uint64(n)|1) + 6) / 7 }
