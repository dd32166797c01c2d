package statetree

import (
	"bytes"
	"fmt"

	"github.com/p2pnode/p2pnode/chain"
)

// Restorer builds the stored tree of a version from its leaves received in
// key-hash order, as a snapshot sync receives them after a [RangeVerifier]
// accepted them. A node is emitted as soon as it is final: a leaf when the
// next leaf is known (which fixes its depth), an internal node when a leaf
// to its right arrives. It holds only the path of the last leaf, so a
// snapshot of any size is restored in bounded memory, and the nodes of each
// chunk can be stored with the chunk.
type Restorer struct {
	version  uint64
	root     chain.Hash
	done     bool
	started  bool
	prev     Leaf
	prevHash chain.Hash
	prevUp   int // depth at which prev split from the leaf before it, -1 if none
	left     [MaxDepth]Child
	hi       int // left[j] is empty for every j > hi
	out      []NodeEntry
	nodes    []Node // slabs: a few allocations per chunk, not one per node
	leaves   []Leaf
}

// NewRestorer returns a restorer of the tree of version, whose root is
// root if it is built with [Restorer.AddChunk].
func NewRestorer(version uint64, root chain.Hash) *Restorer {
	return &Restorer{version: version, root: root, prevUp: -1, hi: -1, done: root == Placeholder}
}

// Complete reports whether the chunks added with AddChunk are the whole
// tree of the root.
func (r *Restorer) Complete() bool { return r.done }

// Last returns the key hash of the last leaf added, false before the
// first: the next chunk starts after it.
func (r *Restorer) Last() (chain.Hash, bool) { return r.prev.KeyHash, r.started }

// AddChunk verifies the next chunk of the snapshot, kvs with its proof p,
// against the restorer's root and adds its leaves, which it returns hashed.
// It verifies and builds in one pass: the hashes of the nodes it builds
// are those the proof needs, and the left part of the chunk's path comes
// from the leaves added before, so a chunk is accepted only if, with every
// earlier chunk, it is exactly the tree's leaves up to its last. Its errors
// are those of [RangeVerifier.Verify]; a chunk that fails leaves the
// restorer as it was.
func (r *Restorer) AddChunk(kvs []KV, p *RangeProof) ([]Leaf, error) {
	if r.done {
		return nil, vfail(ErrOutOfOrder, "snapshot already complete")
	}
	ls, lh, err := hashLeaves(kvs)
	if err != nil {
		return nil, err
	}
	if len(ls) == 0 {
		return nil, vfail(ErrEmptyRange, "no leaves")
	}
	if p == nil {
		return nil, vfail(ErrMalformedProof, "no proof")
	}
	if p.FirstDepth > MaxDepth || p.LastDepth > MaxDepth {
		return nil, vfail(ErrMalformedProof, "depths %d, %d", p.FirstDepth, p.LastDepth)
	}
	first := &ls[0].KeyHash
	if r.started && bytes.Compare(first[:], r.prev.KeyHash[:]) <= 0 {
		return nil, vfail(ErrOutOfOrder, "chunk starts at %s, not after %s", first.Short(), r.prev.KeyHash.Short())
	}
	saved := r.save()
	fail := func(err error) ([]Leaf, error) {
		r.restore(saved)
		return nil, err
	}
	l := -1
	if r.started {
		l = commonPrefix(&r.prev.KeyHash, first)
	}
	if err := r.add(ls[:1], lh[:1]); err != nil {
		return fail(err)
	}
	// The left siblings of the first leaf's path, as the leaves before it
	// make them: the proof must agree, or leaves between are missing.
	dF, k := int(p.FirstDepth), 0
	if dF <= l {
		return fail(vfail(ErrGap, "first leaf at depth %d above its split %d from the previous one", dF, l))
	}
	for j := 0; j < dF; j++ {
		if bit(first, j) == 0 {
			continue
		}
		want := Placeholder
		if j <= l {
			want = r.left[j].hash()
		}
		if k >= len(p.Left) || p.Left[k] != want {
			return fail(vfail(ErrGap, "left sibling at depth %d differs from the previous chunks", j))
		}
		k++
	}
	if k != len(p.Left) {
		return fail(vfail(ErrGap, "%d left siblings, the previous chunks give %d", len(p.Left), k))
	}
	if err := r.add(ls[1:], lh[1:]); err != nil {
		return fail(err)
	}
	// The root: the last leaf at its depth, the left parts built, the right
	// ones from the proof.
	last := &r.prev.KeyHash
	dL := int(p.LastDepth)
	if dL <= r.prevUp {
		return fail(vfail(ErrMalformedProof, "last leaf at depth %d above its split %d", dL, r.prevUp))
	}
	ri := len(p.Right)
	h := r.prevHash
	for j := dL - 1; j >= 0; j-- {
		if bit(last, j) == 1 {
			h = NodeHash(r.left[j].hash(), h)
			continue
		}
		if ri--; ri < 0 {
			return fail(vfail(ErrMalformedProof, "too few right siblings"))
		}
		h = NodeHash(h, p.Right[ri])
	}
	if ri != 0 {
		return fail(vfail(ErrMalformedProof, "%d right siblings unused", ri))
	}
	if h != r.root {
		return fail(vfail(ErrWrongRoot, "got %s, want %s", h.Short(), r.root.Short()))
	}
	r.done = true
	for _, s := range p.Right {
		if s != Placeholder {
			r.done = false
			break
		}
	}
	return ls, nil
}

// restorerState is what AddChunk puts back when a chunk fails.
type restorerState struct {
	started  bool
	prev     Leaf
	prevHash chain.Hash
	prevUp   int
	left     [MaxDepth]Child
	hi, out  int
}

func (r *Restorer) save() *restorerState {
	return &restorerState{started: r.started, prev: r.prev, prevHash: r.prevHash, prevUp: r.prevUp, left: r.left, hi: r.hi, out: len(r.out)}
}

func (r *Restorer) restore(s *restorerState) {
	r.started, r.prev, r.prevHash, r.prevUp, r.left, r.hi = s.started, s.prev, s.prevHash, s.prevUp, s.left, s.hi
	clear(r.out[s.out:])
	r.out = r.out[:s.out]
}

// Add adds leaves without verifying them: they must be sorted by strictly
// increasing key hash, after every leaf added before, with their hashes
// computed. It is for leaves the node trusts (its own, to rebuild a
// restorer); a peer's go through AddChunk.
func (r *Restorer) Add(leaves []Leaf) error {
	lh := make([]chain.Hash, len(leaves))
	for i := range leaves {
		lh[i] = leaves[i].Hash()
	}
	return r.add(leaves, lh)
}

// add is Add with the leaves' hashes lh.
func (r *Restorer) add(leaves []Leaf, lh []chain.Hash) error {
	for i := range leaves {
		x := &leaves[i]
		if !r.started {
			r.prev, r.prevHash, r.started = *x, lh[i], true
			continue
		}
		if bytes.Compare(r.prev.KeyHash[:], x.KeyHash[:]) >= 0 {
			return fmt.Errorf("%w: restore at %s after %s", ErrUnsortedWrites, x.KeyHash.Short(), r.prev.KeyHash.Short())
		}
		l := commonPrefix(&r.prev.KeyHash, &x.KeyHash)
		c := r.close(max(r.prevUp, l)+1, l)
		// The subtree of prev below the split is final: it is the left
		// child of the node at depth l on x's path.
		for j := l + 1; j <= r.hi; j++ {
			r.left[j] = Child{}
		}
		r.left[l], r.hi = c, l
		r.prev, r.prevHash, r.prevUp = *x, lh[i], l
	}
	return nil
}

// close emits prev at depth dp and the nodes of its path from depth dp-1
// up to depth stop+1, and returns the reference to the last one emitted.
func (r *Restorer) close(dp, stop int) Child {
	kh := r.prev.KeyHash
	if len(r.leaves) == 0 {
		r.leaves = make([]Leaf, 256)
	}
	leaf := &r.leaves[0]
	r.leaves = r.leaves[1:]
	*leaf = r.prev
	n := r.node()
	*n = Node{Kind: KindLeaf, Leaf: leaf}
	c := Child{Kind: KindLeaf, Version: r.version, Hash: r.prevHash}
	r.out = append(r.out, NodeEntry{Key: NodeKey{Version: r.version, Depth: uint16(dp), Path: prefix(kh, dp)}, Node: n})
	for j := dp - 1; j > stop; j-- {
		n := r.node()
		*n = Node{Kind: KindInternal}
		if bit(&kh, j) == 1 {
			n.Left, n.Right = r.left[j], c
		} else {
			n.Left = c
		}
		c = Child{Kind: KindInternal, Version: r.version, Hash: NodeHash(n.Left.hash(), n.Right.hash())}
		r.out = append(r.out, NodeEntry{Key: NodeKey{Version: r.version, Depth: uint16(j), Path: prefix(kh, j)}, Node: n})
	}
	return c
}

func (r *Restorer) node() *Node {
	if len(r.nodes) == 0 {
		r.nodes = make([]Node, 512)
	}
	n := &r.nodes[0]
	r.nodes = r.nodes[1:]
	return n
}

// Take returns the nodes emitted since the last call, for the caller to
// store.
func (r *Restorer) Take() []NodeEntry {
	out := r.out
	r.out = nil
	return out
}

// Finish ends the restore: it emits the nodes of the last leaf's path and
// the root, and returns the root hash with the nodes not taken yet. The
// restorer must not be used after.
func (r *Restorer) Finish() (chain.Hash, []NodeEntry) {
	if !r.started {
		r.out = append(r.out, NodeEntry{Key: NodeKey{Version: r.version}, Node: &Node{Kind: KindNull}})
		return Placeholder, r.Take()
	}
	c := r.close(r.prevUp+1, -1)
	return c.Hash, r.Take()
}
