package statetree

import (
	"bytes"
	"fmt"
	"sort"
	"sync"

	"github.com/p2pnode/p2pnode/chain"
)

// Empty is the base version of the first update: the empty tree, which is
// not stored.
const Empty = ^uint64(0)

// Parallel hashing: an update splits the subtrees below depth parallelDepth
// between goroutines when at least parallelMin writes go into them. A
// goroutine costs about a microsecond and 64 writes into a large tree
// some hundreds, so a block of 100 writes is already split in two.
const (
	parallelDepth = 2
	parallelMin   = 64
)

// Write is one write of a batch: Value under Key, or the deletion of Key.
// KeyHash must be KeyHash(Key); a deletion needs only KeyHash.
type Write struct {
	KeyHash chain.Hash
	Key     []byte
	Value   []byte
	Delete  bool
}

// Tree is a versioned authenticated sparse Merkle tree over the nodes of a
// [NodeReader]. It never writes: [Tree.Update] returns a [Batch] for the
// caller to store. A Tree is safe for concurrent use if its reader is.
type Tree struct {
	r NodeReader
}

// New returns the tree whose nodes r reads.
func New(r NodeReader) *Tree { return &Tree{r: r} }

// op is a write prepared for the update: a leaf to put (fresh: its value
// hash is still to compute) or, with leaf nil, a deletion.
type op struct {
	kh    chain.Hash
	leaf  *Leaf
	fresh bool
}

// sub is the result of updating a subtree: empty, a single leaf (which its
// parent places, since a single leaf rises to the top of its subtree), or an
// internal node already emitted at its final position. It holds no
// pointer it does not need, so that the recursion allocates nothing.
type sub struct {
	kind   Kind
	stored bool // KindLeaf: the leaf is stored at at
	hash   chain.Hash
	leaf   *Leaf   // KindLeaf: the leaf, nil if not read yet
	at     NodeKey // KindLeaf, stored: where the leaf is stored
	ver    uint64  // KindInternal: version of the stored node
}

// updater collects the nodes and stale records of one update (of one
// goroutine of it). Everything it makes comes from slabs or chunks, a few
// allocations per thousand nodes rather than one or more per node, and
// nodes are read from this package's stores without allocating.
type updater struct {
	r       NodeReader
	version uint64
	nodes   chunks[NodeEntry]
	stale   chunks[StaleNode]
	slab    []Node
	leaves  leafSlab
	ops     []op       // free room for the op lists of leaves met
	forks   []*updater // the updaters of parallel subtrees, merged at the end
}

// newUpdater returns an updater sized for about n writes.
func newUpdater(r NodeReader, version uint64, n int) *updater {
	// A write changes the nodes of its path below the part it shares with
	// the other writes of the batch: 16 at 100 writes into a million keys,
	// 8.5 at 25,600. The first chunk holds a small batch whole, so that
	// its nodes are not copied again.
	est := min(20*n+4, chunkSize)
	return &updater{r: r, version: version, nodes: newChunks[NodeEntry](est), stale: newChunks[StaleNode](est)}
}

func (u *updater) newNode() *Node {
	if len(u.slab) == 0 {
		u.slab = make([]Node, 256)
	}
	n := &u.slab[0]
	u.slab = u.slab[1:]
	return n
}

// opList returns an empty list of room for n ops.
func (u *updater) opList(n int) []op {
	if cap(u.ops) < n {
		u.ops = make([]op, 0, max(n, 1024))
	}
	l := u.ops[:0:n]
	u.ops = u.ops[n:n]
	return l
}

// merge gathers the nodes and stale records of u and its forks, in order.
func (u *updater) merge() ([]NodeEntry, []StaleNode) {
	if len(u.forks) == 0 && len(u.nodes.done) == 0 && len(u.stale.done) == 0 {
		return u.nodes.cur, u.stale.cur
	}
	var all []*updater
	var gather func(*updater)
	gather = func(w *updater) {
		all = append(all, w)
		for _, f := range w.forks {
			gather(f)
		}
	}
	gather(u)
	nn, ns := 0, 0
	for _, w := range all {
		nn, ns = nn+w.nodes.len(), ns+w.stale.len()
	}
	nodes, stale := make([]NodeEntry, 0, nn), make([]StaleNode, 0, ns)
	for _, w := range all {
		nodes, stale = w.nodes.appendTo(nodes), w.stale.appendTo(stale)
	}
	return nodes, stale
}

// chunkSize is the length of the chunks of an updater's lists.
const chunkSize = 4096

// chunks is a list that grows by chunks: an append never copies what is
// already there (the lists of a large batch are copied once, into the
// batch, rather than at each growth).
type chunks[T any] struct {
	done [][]T
	cur  []T
	n    int // the length of done's chunks
}

func newChunks[T any](n int) chunks[T] { return chunks[T]{cur: make([]T, 0, n)} }

func (c *chunks[T]) add(v T) {
	if len(c.cur) == cap(c.cur) {
		c.done, c.n = append(c.done, c.cur), c.n+len(c.cur)
		c.cur = make([]T, 0, chunkSize)
	}
	c.cur = append(c.cur, v)
}

func (c *chunks[T]) len() int { return c.n + len(c.cur) }

func (c *chunks[T]) appendTo(b []T) []T {
	for _, d := range c.done {
		b = append(b, d...)
	}
	return append(b, c.cur...)
}

// Update applies writes, sorted by strictly increasing KeyHash, to the tree
// of version base (Empty for the empty tree) and returns the batch that
// stores the tree of version, which must be above base. Writing a key sets
// its value; deleting an absent key changes nothing. Shared upper nodes are
// hashed once per batch, and large batches are hashed in parallel.
func (t *Tree) Update(base, version uint64, writes []Write) (*Batch, error) {
	if base != Empty && version <= base {
		return nil, fmt.Errorf("%w: version %d, base %d", ErrVersion, version, base)
	}
	ops := make([]op, len(writes))
	leaves := make([]Leaf, len(writes))
	for i := range writes {
		w := &writes[i]
		if i > 0 && bytes.Compare(writes[i-1].KeyHash[:], w.KeyHash[:]) >= 0 {
			return nil, fmt.Errorf("%w: at write %d", ErrUnsortedWrites, i)
		}
		ops[i].kh = w.KeyHash
		if w.Delete {
			continue
		}
		if len(w.Key) == 0 || len(w.Key) > MaxKeySize || len(w.Value) > MaxValueSize {
			return nil, fmt.Errorf("statetree: write %d: key of %d bytes, value of %d bytes", i, len(w.Key), len(w.Value))
		}
		leaves[i] = Leaf{KeyHash: w.KeyHash, Key: w.Key, Value: w.Value}
		ops[i].leaf, ops[i].fresh = &leaves[i], true
	}
	u := newUpdater(t.r, version, len(writes))
	rootKey := NodeKey{Version: version}
	var root Child
	if base != Empty {
		oldKey := NodeKey{Version: base}
		n, _, err := u.read(oldKey, hint{})
		if err != nil {
			return nil, err
		}
		root = Child{Kind: n.Kind, Version: base, Hash: n.Hash()}
		if len(ops) == 0 || n.Kind == KindNull {
			// The root is copied (or rebuilt) under the new version.
			u.markStale(oldKey)
		}
		if len(ops) == 0 {
			c := u.newNode()
			*c = n
			u.emit(rootKey, c)
			nodes, stale := u.merge()
			return &Batch{Version: version, Root: root.hash(), Nodes: nodes, Stale: stale}, nil
		}
	}
	s, err := u.update(0, chain.Hash{}, root, hint{}, ops)
	if err != nil {
		return nil, err
	}
	switch s.kind {
	case KindNull:
		u.emit(rootKey, &Node{Kind: KindNull})
	case KindLeaf:
		// A leaf at the root is stored under the new version even if it
		// did not change, like every root.
		l, err := u.leafOf(s)
		if err != nil {
			return nil, err
		}
		if s.stored {
			u.markStale(s.at)
		}
		u.emit(rootKey, &Node{Kind: KindLeaf, Leaf: l})
	}
	nodes, stale := u.merge()
	return &Batch{Version: version, Root: s.hash, Nodes: nodes, Stale: stale}, nil
}

func (u *updater) get(k NodeKey) (*Node, error) {
	n, err := u.r.Node(k)
	if err != nil {
		return nil, fmt.Errorf("statetree: read node %d/%d: %w", k.Version, k.Depth, err)
	}
	return n, nil
}

// read returns the node stored under k, as get does, but by value and,
// from this package's stores, without allocating.
func (u *updater) read(k NodeKey, h hint) (Node, [2]hint, error) {
	n, kids, err := readNode(u.r, k, h, &u.leaves)
	if err != nil {
		return Node{}, kids, fmt.Errorf("statetree: read node %d/%d: %w", k.Version, k.Depth, err)
	}
	return n, kids, nil
}

func (u *updater) emit(k NodeKey, n *Node) { u.nodes.add(NodeEntry{Key: k, Node: n}) }

func (u *updater) markStale(k NodeKey) {
	u.stale.add(StaleNode{StaleSince: u.version, Key: k})
}

// split returns the index of the first op whose key hash has bit d set.
func split(ops []op, d int) int {
	return sort.Search(len(ops), func(i int) bool { return bit(&ops[i].kh, d) == 1 })
}

// update applies ops, whose key hashes all start with the d bits of path,
// to the subtree at (d, path) whose current root is c, stored where h
// says if it knows.
func (u *updater) update(d int, path chain.Hash, c Child, h hint, ops []op) (sub, error) {
	if len(ops) == 0 {
		switch c.Kind {
		case KindLeaf:
			return sub{kind: KindLeaf, hash: c.Hash, stored: true, at: NodeKey{Version: c.Version, Depth: uint16(d), Path: path}}, nil
		case KindInternal:
			return sub{kind: KindInternal, hash: c.Hash, ver: c.Version}, nil
		}
		return sub{}, nil
	}
	switch c.Kind {
	case KindNull:
		return u.build(d, path, puts(ops))
	case KindLeaf:
		key := NodeKey{Version: c.Version, Depth: uint16(d), Path: path}
		n, _, err := u.read(key, h)
		if err != nil {
			return sub{}, err
		}
		if n.Kind != KindLeaf {
			return sub{}, fmt.Errorf("%w: node %d/%d is not a leaf", ErrCorrupt, key.Version, key.Depth)
		}
		l := n.Leaf
		merged := u.opList(len(ops) + 1)
		placed, touched, anyPut := false, false, false
		for _, o := range ops {
			if !placed {
				switch c := bytes.Compare(l.KeyHash[:], o.kh[:]); {
				case c < 0:
					merged = append(merged, op{kh: l.KeyHash, leaf: l})
					placed = true
				case c == 0:
					placed, touched = true, true
				}
			}
			if o.leaf != nil {
				merged = append(merged, o)
				anyPut = true
			}
		}
		if !placed {
			merged = append(merged, op{kh: l.KeyHash, leaf: l})
		}
		if !touched && !anyPut {
			return sub{kind: KindLeaf, hash: c.Hash, leaf: l, stored: true, at: key}, nil
		}
		u.markStale(key)
		return u.build(d, path, merged)
	case KindInternal:
		key := NodeKey{Version: c.Version, Depth: uint16(d), Path: path}
		n, kids, err := u.read(key, h)
		if err != nil {
			return sub{}, err
		}
		if n.Kind != KindInternal || d >= MaxDepth {
			return sub{}, fmt.Errorf("%w: node %d/%d is not internal", ErrCorrupt, key.Version, key.Depth)
		}
		u.markStale(key)
		i := split(ops, d)
		p0, p1 := withBit(path, d, 0), withBit(path, d, 1)
		left, right := n.Left, n.Right
		var s0, s1 sub
		if parallel(d, len(ops)) {
			s0, s1, err = u.both(len(ops),
				func(w *updater) (sub, error) { return w.update(d+1, p0, left, kids[0], ops[:i]) },
				func(w *updater) (sub, error) { return w.update(d+1, p1, right, kids[1], ops[i:]) })
		} else if s0, err = u.update(d+1, p0, left, kids[0], ops[:i]); err == nil {
			s1, err = u.update(d+1, p1, right, kids[1], ops[i:])
		}
		if err != nil {
			return sub{}, err
		}
		return u.combine(d, path, s0, s1)
	}
	return sub{}, fmt.Errorf("%w: child kind %d", ErrCorrupt, c.Kind)
}

// puts returns ops without its deletions (which delete nothing in an empty
// subtree).
func puts(ops []op) []op {
	for i := range ops {
		if ops[i].leaf == nil {
			out := make([]op, 0, len(ops)-1)
			for _, o := range ops {
				if o.leaf != nil {
					out = append(out, o)
				}
			}
			return out
		}
	}
	return ops
}

// build returns the subtree at (d, path) holding exactly the leaves of
// puts.
func (u *updater) build(d int, path chain.Hash, puts []op) (sub, error) {
	switch len(puts) {
	case 0:
		return sub{}, nil
	case 1:
		l := puts[0].leaf
		if puts[0].fresh {
			l.ValueHash = ValueHash(l.Value)
		}
		return sub{kind: KindLeaf, hash: l.Hash(), leaf: l}, nil
	}
	if d >= MaxDepth {
		return sub{}, fmt.Errorf("%w: two leaves with one key hash", ErrCorrupt)
	}
	i := split(puts, d)
	p0, p1 := withBit(path, d, 0), withBit(path, d, 1)
	var s0, s1 sub
	var err error
	if parallel(d, len(puts)) {
		s0, s1, err = u.both(len(puts),
			func(w *updater) (sub, error) { return w.build(d+1, p0, puts[:i]) },
			func(w *updater) (sub, error) { return w.build(d+1, p1, puts[i:]) })
	} else if s0, err = u.build(d+1, p0, puts[:i]); err == nil {
		s1, err = u.build(d+1, p1, puts[i:])
	}
	if err != nil {
		return sub{}, err
	}
	return u.combine(d, path, s0, s1)
}

// parallel reports whether the two subtrees of a node at depth d, into
// which n writes go, are updated in parallel.
func parallel(d, n int) bool { return d < parallelDepth && n >= parallelMin }

// both runs f0 on a new updater in a new goroutine and f1 on u; n writes
// go into the two.
func (u *updater) both(n int, f0, f1 func(*updater) (sub, error)) (sub, sub, error) {
	w := newUpdater(u.r, u.version, n/2)
	u.forks = append(u.forks, w)
	var (
		s0   sub
		err0 error
		wg   sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		s0, err0 = f0(w)
	}()
	s1, err1 := f1(u)
	wg.Wait()
	if err0 != nil {
		return sub{}, sub{}, err0
	}
	if err1 != nil {
		return sub{}, sub{}, err1
	}
	return s0, s1, nil
}

// combine returns the subtree at (d, path) whose children are s0 and s1: a
// single leaf (or nothing) rises; otherwise a new internal node is emitted.
func (u *updater) combine(d int, path chain.Hash, s0, s1 sub) (sub, error) {
	if s0.kind == KindNull && s1.kind != KindInternal {
		return s1, nil
	}
	if s1.kind == KindNull && s0.kind != KindInternal {
		return s0, nil
	}
	c0, err := u.place(d+1, withBit(path, d, 0), s0)
	if err != nil {
		return sub{}, err
	}
	c1, err := u.place(d+1, withBit(path, d, 1), s1)
	if err != nil {
		return sub{}, err
	}
	h := NodeHash(c0.hash(), c1.hash())
	n := u.newNode()
	*n = Node{Kind: KindInternal, Left: c0, Right: c1}
	u.emit(NodeKey{Version: u.version, Depth: uint16(d), Path: path}, n)
	return sub{kind: KindInternal, hash: h, ver: u.version}, nil
}

// place returns the reference to s as the child at (d, path), storing a
// leaf there unless it is already stored at that position.
func (u *updater) place(d int, path chain.Hash, s sub) (Child, error) {
	switch s.kind {
	case KindNull:
		return Child{}, nil
	case KindInternal:
		return Child{Kind: KindInternal, Version: s.ver, Hash: s.hash}, nil
	}
	if s.stored && int(s.at.Depth) == d {
		return Child{Kind: KindLeaf, Version: s.at.Version, Hash: s.hash}, nil
	}
	l, err := u.leafOf(s)
	if err != nil {
		return Child{}, err
	}
	if s.stored {
		u.markStale(s.at)
	}
	n := u.newNode()
	*n = Node{Kind: KindLeaf, Leaf: l}
	u.emit(NodeKey{Version: u.version, Depth: uint16(d), Path: path}, n)
	return Child{Kind: KindLeaf, Version: u.version, Hash: s.hash}, nil
}

// leafOf returns the leaf of s, reading it if needed.
func (u *updater) leafOf(s sub) (*Leaf, error) {
	if s.leaf != nil {
		return s.leaf, nil
	}
	n, _, err := u.read(s.at, hint{})
	if err != nil {
		return nil, err
	}
	if n.Kind != KindLeaf {
		return nil, fmt.Errorf("%w: node %d/%d is not a leaf", ErrCorrupt, s.at.Version, s.at.Depth)
	}
	return n.Leaf, nil
}
