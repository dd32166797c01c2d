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
// The entry of an internal node also records where its children's entries
// are ([hint]), so that an update reading down a path mostly skips the
// table: one miss a node.
type MemStore struct {
	mu     sync.RWMutex
	seed   maphash.Seed
	slots  []uint64 // tag<<40 | block<<24 | offset; 0 is empty
	shift  uint     // a key's first slot is its hash >> shift
	n      int      // keys in slots
	odd    map[NodeKey][]byte
	blocks [][]byte
	buf    []byte
	fill   []fill // Apply's internal nodes, whose hints are to fill
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

// hint is where the entry of a node may be in a MemStore: the position
// (plus one, 0 if unknown) that its parent's entry records. A hint is
// followed only to a live entry of the same key, so a stale or wrong one
// costs a table lookup, never a wrong node.
type hint struct {
	m   *MemStore
	pos uint64
}

// read is get without allocating, following h if it is into m: the node is
// returned by value, a leaf's Leaf taken from leaves, with the hints to
// an internal node's children.
func (m *MemStore) read(k NodeKey, h hint, leaves *leafSlab) (Node, [2]hint, bool, error) {
	var (
		n    Node
		b    []byte
		kids [2]uint64
		ok   bool
	)
	m.mu.RLock()
	if h.m == m && h.pos != 0 {
		if ek, live := m.key(h.pos - 1); live && ek == k {
			b, kids = m.node(h.pos - 1)
			ok = true
		}
	}
	if !ok {
		if i, found := m.find(&k, m.hash(&k)); found {
			b, kids = m.node(m.slots[i] & posMask)
			ok = true
		} else if m.odd != nil {
			b, ok = m.odd[k]
		}
	}
	m.mu.RUnlock()
	if !ok {
		return n, [2]hint{}, false, nil
	}
	return n, [2]hint{{m, kids[0]}, {m, kids[1]}}, true, parseNode(b, &n, leaves)
}

// lookup returns the encoding of the node under k.
func (m *MemStore) lookup(k NodeKey) ([]byte, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if i, ok := m.find(&k, m.hash(&k)); ok {
		b, _ := m.node(m.slots[i] & posMask)
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
		if s&^posMask == t {
			if ek, _ := m.key(s & posMask); ek == *k {
				return i, true
			}
		}
	}
}

// An entry of the arena, at a position block<<24 | offset (posBits):
//
//	dead (1 byte: 0, or 1 once replaced or pruned) | NodeKey.AppendBinary |
//	uvarint(len(node)) | Node.AppendBinary | internal: 2 × 5-byte hints
const (
	posBits = 40
	posMask = 1<<posBits - 1
)

// at returns the arena from pos on.
func (m *MemStore) at(pos uint64) []byte { return m.blocks[pos>>24][pos&(1<<24-1):] }

// key returns the key of the entry at pos and whether the entry is live.
func (m *MemStore) key(pos uint64) (NodeKey, bool) {
	b := m.at(pos)
	var k NodeKey
	k.Version = binary.BigEndian.Uint64(b[1:])
	k.Depth = binary.BigEndian.Uint16(b[9:])
	copy(k.Path[:(int(k.Depth)+7)/8], b[11:])
	return k, b[0] == 0
}

// node returns the node encoding of the entry at pos and its hints (0 if
// unknown or not internal).
func (m *MemStore) node(pos uint64) ([]byte, [2]uint64) {
	b := m.at(pos)
	b = b[11+(int(binary.BigEndian.Uint16(b[9:]))+7)/8:]
	n, w := binary.Uvarint(b)
	node, rest := b[w:w+int(n):w+int(n)], b[w+int(n):]
	var kids [2]uint64
	if n > 0 && Kind(node[0]) == KindInternal {
		kids[0], kids[1] = uint40(rest), uint40(rest[5:])
	}
	return node, kids
}

func uint40(b []byte) uint64 {
	_ = b[4]
	return uint64(b[0])<<32 | uint64(b[1])<<24 | uint64(b[2])<<16 | uint64(b[3])<<8 | uint64(b[4])
}

func putUint40(b []byte, v uint64) {
	_ = b[4]
	b[0], b[1], b[2], b[3], b[4] = byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}

// fill is an internal node of a batch being applied (its index in the
// batch) and the position of its entry's hints.
type fill struct {
	node int
	at   uint64
}

// clean reports whether k can be an entry's key: the bits of its path
// past its depth are zero.
func clean(k *NodeKey) bool {
	d := int(k.Depth)
	if d >= MaxDepth {
		return d == MaxDepth
	}
	i := d >> 3
	if k.Path[i]&(0xff>>uint(d&7)) != 0 {
		return false
	}
	for _, b := range k.Path[i+1:] {
		if b != 0 {
			return false
		}
	}
	return true
}

// home returns the first slot of the key of slot s.
func (m *MemStore) home(s uint64) int {
	k, _ := m.key(s & posMask)
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
	m.fill = m.fill[:0]
	for ei, e := range b.Nodes {
		m.buf = e.Node.AppendBinary(m.buf[:0])
		k := e.Key
		if !clean(&k) {
			if m.odd == nil {
				m.odd = make(map[NodeKey][]byte)
			}
			m.odd[k] = append([]byte(nil), m.buf...)
			continue
		}
		size := 11 + (int(k.Depth)+7)/8 + uvarintLen(len(m.buf)) + len(m.buf)
		internal := e.Node.Kind == KindInternal
		if internal {
			size += 10
		}
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
		blk := k.AppendBinary(append(m.blocks[last], 0))
		blk = binary.AppendUvarint(blk, uint64(len(m.buf)))
		blk = append(blk, m.buf...)
		if internal {
			if k.Depth < MaxDepth {
				m.fill = append(m.fill, fill{ei, uint64(last)<<24 | uint64(len(blk))})
			}
			blk = append(blk, make([]byte, 10)...)
		}
		m.blocks[last] = blk
		pos := uint64(last)<<24 | uint64(off)
		h := m.hash(&k)
		i, ok := m.find(&k, h)
		if ok {
			m.at(m.slots[i] & posMask)[0] = 1 // replaced
		} else {
			m.n++
		}
		m.slots[i] = tag(h) | pos
	}
	// Record where the children of the batch's internal nodes are, once
	// they are all stored.
	for _, f := range m.fill {
		e := &b.Nodes[f.node]
		hints := m.at(f.at)
		d := int(e.Key.Depth)
		ck := NodeKey{Depth: uint16(d + 1), Path: e.Key.Path}
		for side, c := range [2]*Child{&e.Node.Left, &e.Node.Right} {
			if c.Kind == KindNull {
				continue
			}
			ck.Version = c.Version
			if side == 1 {
				ck.Path[d>>3] |= 1 << (7 - uint(d&7))
			}
			if i, ok := m.find(&ck, m.hash(&ck)); ok {
				putUint40(hints[5*side:], m.slots[i]&posMask+1)
			}
		}
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
				m.at(m.slots[i] & posMask)[0] = 1 // pruned
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
		if k, _ := m.key(s & posMask); k.Version == version {
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
// from leaves), following h, and with the hints to an internal node's
// children: most of an update's time went into allocations, then into
// the cache misses of reads.
func readNode(r NodeReader, k NodeKey, h hint, leaves *leafSlab) (Node, [2]hint, error) {
	switch r := r.(type) {
	case *MemStore:
		n, kids, ok, err := r.read(k, h, leaves)
		if !ok {
			return n, kids, fmt.Errorf("%w: %d/%d", ErrNodeNotFound, k.Version, k.Depth)
		}
		return n, kids, err
	case *Overlay:
		if n, kids, ok, err := r.mem.read(k, h, leaves); ok {
			return n, kids, err
		}
		return readNode(r.base, k, h, leaves)
	}
	p, err := r.Node(k)
	if err != nil {
		return Node{}, [2]hint{}, err
	}
	return *p, [2]hint{}, nil
}

// uvarintLen returns the length of the uvarint of n.
func uvarintLen(n int) int { return (bits.Len64(uint64(n)|1) + 6) / 7 }
