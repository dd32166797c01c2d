package statetree

import (
	"bytes"
	"encoding/binary"
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
	ls, lh, err := chunkLeaves(r.done, kvs, p)
	if err != nil {
		return nil, err
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
// tree is the verified one only once Complete reports true; before, Finish
// builds the tree of the leaves added so far. The restorer must not be
// used after.
func (r *Restorer) Finish() (chain.Hash, []NodeEntry) {
	if !r.started {
		r.out = append(r.out, NodeEntry{Key: NodeKey{Version: r.version}, Node: &Node{Kind: KindNull}})
		return Placeholder, r.Take()
	}
	c := r.close(r.prevUp+1, -1)
	return c.Hash, r.Take()
}

// MarshalBinary encodes the restorer's position, for a snapshot sync to
// store with each chunk (after storing the chunk's nodes from Take) and to
// resume from with [ResumeRestorer] after a crash:
//
//	uvarint(version) | root | flags (1: started, 2: complete)
//	if started: KeyHash | ValueHash | uvarint(len(Key)) | Key
//	            uvarint(len(Value)) | Value | uvarint(prevUp+1)
//	            child(left[0]) … child(left[prevUp]), as in Node.AppendBinary
//
// where prevUp is the depth at which the last leaf split from the one
// before it (-1 for the first leaf) and left[j] the left child of the
// node at depth j on the last leaf's path (empty where its bit is 0).
func (r *Restorer) MarshalBinary() ([]byte, error) {
	b := binary.AppendUvarint(nil, r.version)
	b = append(b, r.root[:]...)
	var flags byte
	if r.started {
		flags |= 1
	}
	if r.done {
		flags |= 2
	}
	b = append(b, flags)
	if !r.started {
		return b, nil
	}
	b = append(b, r.prev.KeyHash[:]...)
	b = append(b, r.prev.ValueHash[:]...)
	b = binary.AppendUvarint(b, uint64(len(r.prev.Key)))
	b = append(b, r.prev.Key...)
	b = binary.AppendUvarint(b, uint64(len(r.prev.Value)))
	b = append(b, r.prev.Value...)
	b = binary.AppendUvarint(b, uint64(r.prevUp+1))
	for j := 0; j <= r.prevUp; j++ {
		c := r.left[j]
		b = append(b, byte(c.Kind))
		if c.Kind != KindNull {
			b = binary.AppendUvarint(b, c.Version)
			b = append(b, c.Hash[:]...)
		}
	}
	return b, nil
}

// ResumeRestorer returns the restorer whose position b encodes
// ([Restorer.MarshalBinary]). It decodes strictly: sizes within limits,
// hashes that match the leaf, left children only where the path goes
// right, no trailing bytes.
func ResumeRestorer(b []byte) (*Restorer, error) {
	bad := func(what string) (*Restorer, error) {
		return nil, fmt.Errorf("%w: restorer state: %s", ErrCorrupt, what)
	}
	v, m := uvarint(b)
	if m == 0 || len(b)-m < chain.HashSize+1 {
		return bad("header")
	}
	b = b[m:]
	r := NewRestorer(v, chain.Hash(b[:chain.HashSize]))
	flags := b[chain.HashSize]
	b = b[chain.HashSize+1:]
	if flags&^3 != 0 || (flags&1 == 0 && flags&2 != 0 && r.root != Placeholder) {
		return bad("flags")
	}
	r.done = flags&2 != 0
	if flags&1 == 0 {
		if len(b) != 0 || r.done != (r.root == Placeholder) {
			return bad("trailing bytes")
		}
		return r, nil
	}
	r.started = true
	if len(b) < 2*chain.HashSize {
		return bad("leaf")
	}
	l := Leaf{KeyHash: chain.Hash(b[:chain.HashSize]), ValueHash: chain.Hash(b[chain.HashSize : 2*chain.HashSize])}
	b = b[2*chain.HashSize:]
	kl, m := uvarint(b)
	if m == 0 || kl == 0 || kl > MaxKeySize || uint64(len(b)-m) < kl {
		return bad("key")
	}
	l.Key, b = append([]byte(nil), b[m:m+int(kl)]...), b[m+int(kl):]
	vl, m := uvarint(b)
	if m == 0 || vl > MaxValueSize || uint64(len(b)-m) < vl {
		return bad("value")
	}
	l.Value, b = append([]byte{}, b[m:m+int(vl)]...), b[m+int(vl):]
	if KeyHash(l.Key) != l.KeyHash || ValueHash(l.Value) != l.ValueHash {
		return bad("leaf hashes")
	}
	r.prev, r.prevHash = l, l.Hash()
	up, m := uvarint(b)
	if m == 0 || up > MaxDepth {
		return bad("split depth")
	}
	b = b[m:]
	r.prevUp, r.hi = int(up)-1, int(up)-1
	for j := 0; j <= r.prevUp; j++ {
		if len(b) == 0 {
			return bad("short path")
		}
		c := Child{Kind: Kind(b[0])}
		b = b[1:]
		switch c.Kind {
		case KindNull:
		case KindLeaf, KindInternal:
			if bit(&l.KeyHash, j) == 0 {
				return bad("left child where the path goes left")
			}
			v, m := uvarint(b)
			if m == 0 || len(b)-m < chain.HashSize {
				return bad("short child")
			}
			c.Version, c.Hash = v, chain.Hash(b[m:m+chain.HashSize])
			b = b[m+chain.HashSize:]
		default:
			return bad("child kind")
		}
		r.left[j] = c
	}
	if r.prevUp >= 0 && r.left[r.prevUp].Kind == KindNull {
		return bad("no leaf before the split")
	}
	if len(b) != 0 {
		return bad("trailing bytes")
	}
	return r, nil
}
