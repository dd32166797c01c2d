package statetree

import (
	"encoding/binary"
	"fmt"

	"github.com/p2pnode/p2pnode/chain"
)

// Proof proves the value of a key hash, or its absence, in the tree of a
// root. It describes the path of the key hash from the root down to where
// it ends: at a leaf (the key's own, or another one whose key hash shares the
// path) or at an empty subtree.
type Proof struct {
	// Leaf is the leaf where the path ends, nil if it ends at an empty
	// subtree.
	Leaf *ProofLeaf
	// Siblings are the hashes of the siblings of the path's nodes, top
	// down: Siblings[i] is the sibling of the node at depth i+1 on the
	// path. The path ends at depth len(Siblings).
	Siblings []chain.Hash
}

// ProofLeaf is a leaf of a proof: its key hash and value hash.
type ProofLeaf struct {
	KeyHash, ValueHash chain.Hash
}

// Get returns the leaf of keyHash in the tree of version (nil if the key
// is absent) and the proof of that. The leaf may share memory with the
// store: the caller must not modify it.
func (t *Tree) Get(version uint64, keyHash chain.Hash) (*Leaf, *Proof, error) {
	u := &updater{r: t.r}
	n, err := u.get(NodeKey{Version: version})
	if err != nil {
		return nil, nil, err
	}
	p := &Proof{}
	for d := 0; ; d++ {
		switch n.Kind {
		case KindNull:
			return nil, p, nil
		case KindLeaf:
			p.Leaf = &ProofLeaf{KeyHash: n.Leaf.KeyHash, ValueHash: n.Leaf.ValueHash}
			if n.Leaf.KeyHash == keyHash {
				return n.Leaf, p, nil
			}
			return nil, p, nil
		case KindInternal:
			if d >= MaxDepth {
				return nil, nil, fmt.Errorf("%w: internal node at depth %d", ErrCorrupt, d)
			}
			next, sib := n.Left, n.Right
			if bit(&keyHash, d) == 1 {
				next, sib = sib, next
			}
			p.Siblings = append(p.Siblings, sib.hash())
			if next.Kind == KindNull {
				return nil, p, nil
			}
			if n, err = u.get(NodeKey{Version: next.Version, Depth: uint16(d + 1), Path: prefix(keyHash, d+1)}); err != nil {
				return nil, nil, err
			}
		default:
			return nil, nil, fmt.Errorf("%w: node kind %d", ErrCorrupt, n.Kind)
		}
	}
}

// Root returns the root hash of the tree of version.
func (t *Tree) Root(version uint64) (chain.Hash, error) {
	n, err := (&updater{r: t.r}).get(NodeKey{Version: version})
	if err != nil {
		return chain.Hash{}, err
	}
	return n.Hash(), nil
}

func vfail(reason error, format string, args ...any) *chain.VerifyError {
	return &chain.VerifyError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// rootFor checks the shape of p for keyHash and returns the root it gives.
func (p *Proof) rootFor(keyHash chain.Hash) (chain.Hash, error) {
	if p == nil {
		return chain.Hash{}, vfail(ErrMalformedProof, "no proof")
	}
	n := len(p.Siblings)
	if n > MaxDepth {
		return chain.Hash{}, vfail(ErrMalformedProof, "%d siblings", n)
	}
	// Below an internal node, a leaf or an empty subtree has a non-empty
	// sibling: otherwise the leaf would have risen, or the node be empty.
	if n > 0 && p.Siblings[n-1] == Placeholder {
		return chain.Hash{}, vfail(ErrMalformedProof, "empty sibling at the end of the path")
	}
	h := Placeholder
	if p.Leaf != nil {
		if p.Leaf.KeyHash != keyHash && commonPrefix(&p.Leaf.KeyHash, &keyHash) < n {
			return chain.Hash{}, vfail(ErrMalformedProof, "leaf off the key's path")
		}
		h = LeafHash(p.Leaf.KeyHash, p.Leaf.ValueHash)
	}
	for i := n - 1; i >= 0; i-- {
		if bit(&keyHash, i) == 1 {
			h = NodeHash(p.Siblings[i], h)
		} else {
			h = NodeHash(h, p.Siblings[i])
		}
	}
	return h, nil
}

// VerifyInclusion checks that p proves value under keyHash in the tree of
// root. It returns a [*chain.VerifyError] with Reason ErrMalformedProof,
// ErrWrongRoot, ErrKeyMissing (p validly proves the key absent) or
// ErrValueMismatch (p is for another value).
func VerifyInclusion(root, keyHash chain.Hash, value []byte, p *Proof) error {
	got, err := p.rootFor(keyHash)
	if err != nil {
		return err
	}
	if got != root {
		return vfail(ErrWrongRoot, "got %s, want %s", got.Short(), root.Short())
	}
	if p.Leaf == nil || p.Leaf.KeyHash != keyHash {
		return vfail(ErrKeyMissing, "key hash %s", keyHash.Short())
	}
	if ValueHash(value) != p.Leaf.ValueHash {
		return vfail(ErrValueMismatch, "key hash %s", keyHash.Short())
	}
	return nil
}

// VerifyNonInclusion checks that p proves keyHash absent from the tree of
// root. It returns a [*chain.VerifyError] with Reason ErrMalformedProof,
// ErrWrongRoot or ErrKeyPresent.
func VerifyNonInclusion(root, keyHash chain.Hash, p *Proof) error {
	got, err := p.rootFor(keyHash)
	if err != nil {
		return err
	}
	if got != root {
		return vfail(ErrWrongRoot, "got %s, want %s", got.Short(), root.Short())
	}
	if p.Leaf != nil && p.Leaf.KeyHash == keyHash {
		return vfail(ErrKeyPresent, "key hash %s", keyHash.Short())
	}
	return nil
}

// MarshalBinary encodes p:
//
//	0x00 (no leaf) | 0x01 KeyHash ValueHash
//	uvarint(len(Siblings)) | Siblings
func (p *Proof) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 1+2*chain.HashSize+2+len(p.Siblings)*chain.HashSize)
	if p.Leaf == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = append(b, p.Leaf.KeyHash[:]...)
		b = append(b, p.Leaf.ValueHash[:]...)
	}
	return appendHashes(b, p.Siblings), nil
}

// UnmarshalBinary decodes the form of [Proof.MarshalBinary], strictly: at
// most MaxDepth siblings and no trailing bytes. It does not verify p.
func (p *Proof) UnmarshalBinary(b []byte) error {
	*p = Proof{}
	if len(b) == 0 {
		return vfail(ErrMalformedProof, "empty proof")
	}
	switch b[0] {
	case 0:
		b = b[1:]
	case 1:
		if len(b) < 1+2*chain.HashSize {
			return vfail(ErrMalformedProof, "short proof leaf")
		}
		p.Leaf = &ProofLeaf{}
		copy(p.Leaf.KeyHash[:], b[1:])
		copy(p.Leaf.ValueHash[:], b[1+chain.HashSize:])
		b = b[1+2*chain.HashSize:]
	default:
		return vfail(ErrMalformedProof, "proof leaf flag %d", b[0])
	}
	sibs, rest, err := readHashes(b)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return vfail(ErrMalformedProof, "%d trailing bytes", len(rest))
	}
	p.Siblings = sibs
	return nil
}

// appendHashes appends uvarint(len(hs)) and the hashes.
func appendHashes(b []byte, hs []chain.Hash) []byte {
	b = binary.AppendUvarint(b, uint64(len(hs)))
	for i := range hs {
		b = append(b, hs[i][:]...)
	}
	return b
}

// readHashes reads the form of appendHashes, at most MaxDepth hashes.
func readHashes(b []byte) ([]chain.Hash, []byte, error) {
	n, m := uvarint(b)
	if m <= 0 || n > MaxDepth {
		return nil, nil, vfail(ErrMalformedProof, "hash count")
	}
	b = b[m:]
	if uint64(len(b)) < n*chain.HashSize {
		return nil, nil, vfail(ErrMalformedProof, "short hash list")
	}
	var hs []chain.Hash
	if n > 0 {
		hs = make([]chain.Hash, n)
		for i := range hs {
			copy(hs[i][:], b[i*chain.HashSize:])
		}
	}
	return hs, b[n*chain.HashSize:], nil
}
