package statetree

import (
	"bytes"

	"github.com/p2pnode/p2pnode/chain"
)

// RangeVerifier verifies the chunks of a snapshot of the tree of a root,
// received in key-hash order: each chunk must start right after the
// previous one, with no leaf of the tree between them. It needs no leaf of
// earlier chunks, only the last leaf's path (at most MaxDepth hashes), so
// a snapshot of any size verifies in bounded memory.
type RangeVerifier struct {
	root chain.Hash
	// the last leaf verified, its depth and the left siblings of its path
	started  bool
	last     chain.Hash
	lastHash chain.Hash
	depth    int
	edge     [MaxDepth]chain.Hash
	done     bool
}

// NewRangeVerifier returns a verifier of the snapshot of the tree of root.
func NewRangeVerifier(root chain.Hash) *RangeVerifier {
	return &RangeVerifier{root: root, done: root == Placeholder}
}

// Complete reports whether the chunks verified so far are the whole tree.
func (v *RangeVerifier) Complete() bool { return v.done }

// Last returns the key hash of the last leaf verified, false before the
// first chunk: the next chunk starts after it.
func (v *RangeVerifier) Last() (chain.Hash, bool) { return v.last, v.started }

// Verify checks the next chunk kvs with its proof p and returns its
// leaves, hashed. Beyond the errors of [VerifyRange], it returns ErrGap if
// p's left part is not the one the previous chunks give (leaves between
// the chunks are missing) and ErrOutOfOrder if the chunk does not start
// after the previous one or the snapshot is already complete. A chunk that
// fails leaves the verifier unchanged.
func (v *RangeVerifier) Verify(kvs []KV, p *RangeProof) ([]Leaf, error) {
	ls, lh, err := chunkLeaves(v.done, kvs, p)
	if err != nil {
		return nil, err
	}
	first := &ls[0].KeyHash
	left, err := v.leftOf(first, int(p.FirstDepth))
	if err != nil {
		return nil, err
	}
	if len(left) != len(p.Left) {
		return nil, vfail(ErrGap, "%d left siblings, the previous chunks give %d", len(p.Left), len(left))
	}
	for i := range left {
		if left[i] != p.Left[i] {
			return nil, vfail(ErrGap, "left sibling %d differs from the previous chunks", i)
		}
	}
	got, rc, err := rangeRoot(ls, lh, p, left)
	if err != nil {
		return nil, err
	}
	if got != v.root {
		return nil, vfail(ErrWrongRoot, "got %s, want %s", got.Short(), v.root.Short())
	}
	lastLeaf := &ls[len(ls)-1]
	v.started, v.last, v.lastHash, v.depth = true, lastLeaf.KeyHash, lh[len(lh)-1], rc.dL
	for k := 0; k < rc.dL; k++ {
		if bit(&v.last, k) == 1 {
			v.edge[k] = rc.edge[k]
		}
	}
	v.done = true
	for _, h := range p.Right {
		if h != Placeholder {
			v.done = false
			break
		}
	}
	return ls, nil
}

// leftOf returns the left siblings of the path of first, at depth dF,
// that the chunks verified so far give, assuming no leaf between the last
// of them and first.
func (v *RangeVerifier) leftOf(first *chain.Hash, dF int) ([]chain.Hash, error) {
	if dF > MaxDepth {
		return nil, vfail(ErrMalformedProof, "depth %d", dF)
	}
	var left []chain.Hash
	if !v.started {
		for k := 0; k < dF; k++ {
			if bit(first, k) == 1 {
				left = append(left, Placeholder)
			}
		}
		return left, nil
	}
	if bytes.Compare(first[:], v.last[:]) <= 0 {
		return nil, vfail(ErrOutOfOrder, "chunk starts at %s, not after %s", first.Short(), v.last.Short())
	}
	l := commonPrefix(&v.last, first)
	if v.depth <= l || dF <= l {
		return nil, vfail(ErrGap, "paths of %s and %s", v.last.Short(), first.Short())
	}
	for k := 0; k < dF; k++ {
		if bit(first, k) == 0 {
			continue
		}
		switch {
		case k < l:
			left = append(left, v.edge[k])
		case k == l:
			// The subtree of the previous leaf below the split: its own
			// left siblings, and nothing on its right.
			h := v.lastHash
			for j := v.depth - 1; j > l; j-- {
				if bit(&v.last, j) == 1 {
					h = NodeHash(v.edge[j], h)
				} else {
					h = NodeHash(h, Placeholder)
				}
			}
			left = append(left, h)
		default:
			left = append(left, Placeholder)
		}
	}
	return left, nil
}
