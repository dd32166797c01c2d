package statetree

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/p2pnode/p2pnode/chain"
)

// KV is a key/value pair of a range, as a peer sends it.
type KV struct {
	_          struct{} `cbor:",toarray"`
	Key, Value []byte
}

// RangeProof proves that a list of leaves, sorted by key hash, is exactly
// the set of leaves of the tree whose key hashes lie between the first and
// the last of them. With the leaves, it gives everything needed to compute
// the root: the positions of the first and last leaves and the subtrees
// entirely to the left of the first and to the right of the last.
type RangeProof struct {
	// FirstDepth and LastDepth are the depths of the first and last leaves
	// in the tree (the lengths of their paths).
	FirstDepth, LastDepth uint16
	// Left has, top down, the sibling of each node of the first leaf's
	// path that is a right child: one per depth k < FirstDepth where bit k
	// of the first key hash is 1.
	Left []chain.Hash
	// Right has, top down, the sibling of each node of the last leaf's
	// path that is a left child: one per depth k < LastDepth where bit k of
	// the last key hash is 0.
	Right []chain.Hash
}

// RangeProof returns the proof of the leaves of the tree of version from
// the leaf of key hash first to that of last, both in the tree.
func (t *Tree) RangeProof(version uint64, first, last chain.Hash) (*RangeProof, error) {
	if bytes.Compare(first[:], last[:]) > 0 {
		return nil, fmt.Errorf("statetree: range proof from %s after %s", first.Short(), last.Short())
	}
	p := &RangeProof{}
	for i, kh := range [2]chain.Hash{first, last} {
		l, gp, err := t.Get(version, kh)
		if err != nil {
			return nil, err
		}
		if l == nil {
			return nil, fmt.Errorf("statetree: range proof: key hash %s not in version %d", kh.Short(), version)
		}
		want := byte(1 - i) // left siblings where the bit is 1, right ones where it is 0
		for k, s := range gp.Siblings {
			if bit(&kh, k) != want {
				continue
			}
			if i == 0 {
				p.Left = append(p.Left, s)
			} else {
				p.Right = append(p.Right, s)
			}
		}
		if i == 0 {
			p.FirstDepth = uint16(len(gp.Siblings))
		} else {
			p.LastDepth = uint16(len(gp.Siblings))
		}
	}
	return p, nil
}

// Leaves returns up to limit leaves of the tree of version, in key-hash
// order, starting with the first whose key hash is at least from. The
// leaves may share memory with the store: the caller must not modify them.
func (t *Tree) Leaves(version uint64, from chain.Hash, limit int) ([]*Leaf, error) {
	u := &updater{r: t.r}
	n, err := u.get(NodeKey{Version: version})
	if err != nil {
		return nil, err
	}
	var out []*Leaf
	err = walk(u, n, 0, chain.Hash{}, &from, limit, &out)
	return out, err
}

// walk appends to out the leaves of the subtree n at (d, path) with key
// hash at least *from (every leaf if from is nil), until out has limit.
func walk(u *updater, n *Node, d int, path chain.Hash, from *chain.Hash, limit int, out *[]*Leaf) error {
	switch n.Kind {
	case KindLeaf:
		if from == nil || bytes.Compare(n.Leaf.KeyHash[:], from[:]) >= 0 {
			*out = append(*out, n.Leaf)
		}
		return nil
	case KindNull:
		return nil
	}
	if d >= MaxDepth {
		return fmt.Errorf("%w: internal node at depth %d", ErrCorrupt, d)
	}
	for b, c := range [2]Child{n.Left, n.Right} {
		if len(*out) >= limit {
			return nil
		}
		if c.Kind == KindNull {
			continue
		}
		cp := withBit(path, d, byte(b))
		f := from
		if f != nil {
			// The child's key hashes all start with cp's d+1 bits.
			switch bytes.Compare(cp[:], prefixPtr(f, d+1)[:]) {
			case -1:
				continue
			case 1:
				f = nil
			}
		}
		cn, err := u.get(NodeKey{Version: c.Version, Depth: uint16(d + 1), Path: cp})
		if err != nil {
			return err
		}
		if err := walk(u, cn, d+1, cp, f, limit, out); err != nil {
			return err
		}
	}
	return nil
}

func prefixPtr(h *chain.Hash, d int) *chain.Hash {
	p := prefix(*h, d)
	return &p
}

// rangeCalc computes the root of a range from its leaves and proof.
type rangeCalc struct {
	leaves      []Leaf
	dF, dL      int
	left, right []chain.Hash
	li, ri      int
	// edge[k], for each depth k < dL where the last key hash has bit 1, is
	// the hash of the left child of the last leaf's path node at depth k:
	// what the next chunk needs of this one.
	edge [MaxDepth]chain.Hash
}

func (rc *rangeCalc) takeLeft() (chain.Hash, error) {
	if rc.li >= len(rc.left) {
		return chain.Hash{}, vfail(ErrMalformedProof, "too few left siblings")
	}
	rc.li++
	return rc.left[rc.li-1], nil
}

func (rc *rangeCalc) takeRight() (chain.Hash, error) {
	if rc.ri >= len(rc.right) {
		return chain.Hash{}, vfail(ErrMalformedProof, "too few right siblings")
	}
	rc.ri++
	return rc.right[rc.ri-1], nil
}

// interior returns the hash of the subtree at depth d holding exactly ls.
// lh are the leaves' hashes.
func interior(d int, ls []Leaf, lh []chain.Hash) chain.Hash {
	switch len(ls) {
	case 0:
		return Placeholder
	case 1:
		return lh[0]
	}
	i := splitLeaves(ls, d)
	return NodeHash(interior(d+1, ls[:i], lh[:i]), interior(d+1, ls[i:], lh[i:]))
}

func splitLeaves(ls []Leaf, d int) int {
	lo, hi := 0, len(ls)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if bit(&ls[m].KeyHash, d) == 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// node returns the hash of the subtree at depth d on the path of the first
// leaf (onLeft), of the last (onRight) or both, whose leaves in the range
// are ls.
func (rc *rangeCalc) node(d int, ls []Leaf, lh []chain.Hash, onLeft, onRight bool) (chain.Hash, error) {
	if !onLeft && !onRight {
		return interior(d, ls, lh), nil
	}
	if (onLeft && d == rc.dF) || (onRight && d == rc.dL) {
		if len(ls) != 1 || (onLeft && d != rc.dF) || (onRight && d != rc.dL) {
			return chain.Hash{}, vfail(ErrMalformedProof, "leaf at depth %d is not alone", d)
		}
		return lh[0], nil
	}
	if d >= MaxDepth {
		return chain.Hash{}, vfail(ErrMalformedProof, "path past the maximum depth")
	}
	first, last := &rc.leaves[0].KeyHash, &rc.leaves[len(rc.leaves)-1].KeyHash
	i := splitLeaves(ls, d)
	var h0, h1 chain.Hash
	var err error
	left := func() { h0, err = rc.takeLeft() }
	right := func() { h1, err = rc.takeRight() }
	sub := func(h *chain.Hash, ls []Leaf, lh []chain.Hash, l, r bool) {
		if err == nil {
			*h, err = rc.node(d+1, ls, lh, l, r)
		}
	}
	switch {
	case onLeft && onRight:
		switch b, c := bit(first, d), bit(last, d); {
		case b == 0 && c == 0:
			// Siblings are consumed top down: this one before the child's.
			right()
			sub(&h0, ls, lh, true, true)
		case b == 1 && c == 1:
			left()
			sub(&h1, ls, lh, true, true)
		default:
			sub(&h0, ls[:i], lh[:i], true, false)
			sub(&h1, ls[i:], lh[i:], false, true)
		}
	case onLeft:
		if bit(first, d) == 1 {
			left()
			sub(&h1, ls, lh, true, false)
		} else {
			sub(&h0, ls[:i], lh[:i], true, false)
			h1 = interior(d+1, ls[i:], lh[i:])
		}
	default:
		if bit(last, d) == 0 {
			right()
			sub(&h0, ls, lh, false, true)
		} else {
			h0 = interior(d+1, ls[:i], lh[:i])
			sub(&h1, ls[i:], lh[i:], false, true)
		}
	}
	if err != nil {
		return chain.Hash{}, err
	}
	if onRight && bit(last, d) == 1 {
		rc.edge[d] = h0
	}
	return NodeHash(h0, h1), nil
}

// rangeRoot returns the root that leaves (hashed, sorted) and p give.
func rangeRoot(leaves []Leaf, lh []chain.Hash, p *RangeProof, left []chain.Hash) (chain.Hash, *rangeCalc, error) {
	if p == nil {
		return chain.Hash{}, nil, vfail(ErrMalformedProof, "no proof")
	}
	if len(leaves) == 0 {
		return chain.Hash{}, nil, vfail(ErrEmptyRange, "no leaves")
	}
	if p.FirstDepth > MaxDepth || p.LastDepth > MaxDepth {
		return chain.Hash{}, nil, vfail(ErrMalformedProof, "depths %d, %d", p.FirstDepth, p.LastDepth)
	}
	rc := &rangeCalc{leaves: leaves, dF: int(p.FirstDepth), dL: int(p.LastDepth), left: left, right: p.Right}
	h, err := rc.node(0, leaves, lh, true, true)
	if err != nil {
		return chain.Hash{}, nil, err
	}
	if rc.li != len(rc.left) || rc.ri != len(rc.right) {
		return chain.Hash{}, nil, vfail(ErrMalformedProof, "%d left and %d right siblings unused", len(rc.left)-rc.li, len(rc.right)-rc.ri)
	}
	return h, rc, nil
}

// parallelLeaves is the chunk size from which hashLeaves hashes the two
// halves of a chunk on two goroutines.
const parallelLeaves = 256

// chunkLeaves hashes the leaves of the next chunk of a snapshot, kvs with
// proof p, after the checks every chunk must pass: the snapshot is not
// complete yet (done), the chunk has leaves and a proof.
func chunkLeaves(done bool, kvs []KV, p *RangeProof) ([]Leaf, []chain.Hash, error) {
	if done {
		return nil, nil, vfail(ErrOutOfOrder, "snapshot already complete")
	}
	ls, lh, err := hashLeaves(kvs)
	if err != nil {
		return nil, nil, err
	}
	if len(ls) == 0 {
		return nil, nil, vfail(ErrEmptyRange, "no leaves")
	}
	if p == nil {
		return nil, nil, vfail(ErrMalformedProof, "no proof")
	}
	return ls, lh, nil
}

// hashLeaves hashes kvs into leaves, with their leaf hashes, and checks
// their order and sizes.
func hashLeaves(kvs []KV) ([]Leaf, []chain.Hash, error) {
	for i := range kvs {
		kv := &kvs[i]
		if len(kv.Key) == 0 || len(kv.Key) > MaxKeySize || len(kv.Value) > MaxValueSize {
			return nil, nil, vfail(ErrMalformedProof, "leaf %d: key of %d bytes, value of %d bytes", i, len(kv.Key), len(kv.Value))
		}
	}
	ls := make([]Leaf, len(kvs))
	lh := make([]chain.Hash, len(kvs))
	hash := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			kv := &kvs[i]
			ls[i] = Leaf{KeyHash: KeyHash(kv.Key), ValueHash: ValueHash(kv.Value), Key: kv.Key, Value: kv.Value}
			lh[i] = LeafHash(ls[i].KeyHash, ls[i].ValueHash)
		}
	}
	if len(kvs) < parallelLeaves {
		hash(0, len(kvs))
	} else {
		var wg sync.WaitGroup
		wg.Go(func() { hash(0, len(kvs)/2) })
		hash(len(kvs)/2, len(kvs))
		wg.Wait()
	}
	for i := 1; i < len(ls); i++ {
		if bytes.Compare(ls[i-1].KeyHash[:], ls[i].KeyHash[:]) >= 0 {
			return nil, nil, vfail(ErrOutOfOrder, "leaf %d", i)
		}
	}
	return ls, lh, nil
}

// VerifyRange checks that kvs are exactly the leaves of the tree of root
// from the first of them to the last, in key-hash order, and returns them
// hashed. It returns a [*chain.VerifyError] with Reason ErrEmptyRange,
// ErrOutOfOrder, ErrMalformedProof or ErrWrongRoot (a tampered leaf, a leaf
// left out, a tampered proof).
func VerifyRange(root chain.Hash, kvs []KV, p *RangeProof) ([]Leaf, error) {
	ls, lh, err := hashLeaves(kvs)
	if err != nil {
		return nil, err
	}
	var left []chain.Hash
	if p != nil {
		left = p.Left
	}
	got, _, err := rangeRoot(ls, lh, p, left)
	if err != nil {
		return nil, err
	}
	if got != root {
		return nil, vfail(ErrWrongRoot, "got %s, want %s", got.Short(), root.Short())
	}
	return ls, nil
}

// MarshalBinary encodes p:
//
//	uvarint(FirstDepth) | uvarint(LastDepth)
//	uvarint(len(Left)) | Left | uvarint(len(Right)) | Right
func (p *RangeProof) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 8+(len(p.Left)+len(p.Right))*chain.HashSize)
	b = binary.AppendUvarint(b, uint64(p.FirstDepth))
	b = binary.AppendUvarint(b, uint64(p.LastDepth))
	b = appendHashes(b, p.Left)
	return appendHashes(b, p.Right), nil
}

// UnmarshalBinary decodes the form of [RangeProof.MarshalBinary], strictly:
// depths and list lengths at most MaxDepth, no trailing bytes. It does not
// verify p.
func (p *RangeProof) UnmarshalBinary(b []byte) error {
	*p = RangeProof{}
	var ds [2]uint16
	for i := range ds {
		d, m := uvarint(b)
		if m <= 0 || d > MaxDepth {
			return vfail(ErrMalformedProof, "range proof depth")
		}
		ds[i], b = uint16(d), b[m:]
	}
	left, b, err := readHashes(b)
	if err != nil {
		return err
	}
	right, b, err := readHashes(b)
	if err != nil {
		return err
	}
	if len(b) != 0 {
		return vfail(ErrMalformedProof, "%d trailing bytes", len(b))
	}
	*p = RangeProof{FirstDepth: ds[0], LastDepth: ds[1], Left: left, Right: right}
	return nil
}
