package chain

import (
	"crypto/sha256"
	"fmt"
	"slices"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

// rangeFactory builds RFC 6962 compact ranges. It is immutable.
var rangeFactory = &compact.RangeFactory{Hash: hashChildren}

// hashChildren is RFC 6962's interior node hash, SHA-256(0x01 || l || r),
// as rfc6962.DefaultHasher.HashChildren computes it, with one allocation
// (the result) for 32-byte children.
func hashChildren(l, r []byte) []byte {
	var buf [1 + 2*HashSize]byte
	in := append(append(append(buf[:0], rfc6962.RFC6962NodeHashPrefix), l...), r...)
	h := sha256.Sum256(in)
	return h[:]
}

// RangeFactory returns the factory of RFC 6962 SHA-256 compact ranges that
// the transaction accumulator is made of, for code that builds range proofs.
func RangeFactory() *compact.RangeFactory { return rangeFactory }

// TxLeafHash returns the accumulator leaf hash of a transaction:
// SHA-256(0x00 || tx), as RFC 6962 defines for leaves.
func TxLeafHash(tx []byte) Hash {
	var buf [1024]byte
	if len(tx) < len(buf) {
		buf[0] = rfc6962.RFC6962LeafHashPrefix
		n := copy(buf[1:], tx)
		return sha256.Sum256(buf[:1+n])
	}
	return Hash(rfc6962.DefaultHasher.HashLeaf(tx))
}

// maxAccumulatorSize bounds the number of transactions of a ledger far
// beyond any real one, so that sizes never wrap.
const maxAccumulatorSize = 1 << 62

// Accumulator is the transaction accumulator of a ledger: an RFC 6962 Merkle
// tree over the ledger's transactions, kept as its compact range (the roots
// of at most 64 perfect subtrees). Its root is a block's ExecutedStateID and
// its size the block's Version. It is not safe for concurrent use.
type Accumulator struct {
	r *compact.Range
}

// NewAccumulator returns an empty accumulator.
func NewAccumulator() *Accumulator {
	return &Accumulator{r: rangeFactory.NewEmptyRange(0)}
}

// AccumulatorFromFrontier rebuilds an accumulator of size leaves from its
// frontier (see [Accumulator.Frontier]).
func AccumulatorFromFrontier(size uint64, frontier []Hash) (*Accumulator, error) {
	if size > maxAccumulatorSize {
		return nil, fmt.Errorf("chain: accumulator size %d over the limit %d", size, uint64(maxAccumulatorSize))
	}
	hs := make([][]byte, len(frontier))
	for i := range frontier {
		hs[i] = frontier[i][:]
	}
	r, err := rangeFactory.NewRange(0, size, hs)
	if err != nil {
		return nil, fmt.Errorf("chain: accumulator frontier: %w", err)
	}
	return &Accumulator{r: r}, nil
}

// Size returns the number of transactions appended.
func (a *Accumulator) Size() uint64 { return a.r.End() }

// Frontier returns the roots of the perfect subtrees that make up the tree,
// left to right: enough to append to it and to compute its root.
func (a *Accumulator) Frontier() []Hash {
	hs := a.r.Hashes()
	out := make([]Hash, len(hs))
	for i, h := range hs {
		copy(out[i][:], h)
	}
	return out
}

// Append adds one transaction.
func (a *Accumulator) Append(tx []byte) {
	a.AppendLeaf(TxLeafHash(tx), nil)
}

// AppendLeaf adds one leaf hash. If visit is not nil it is called with every
// node of the tree that the append completes (the leaf itself and each
// perfect subtree root it closes), so a store can keep them for proofs.
func (a *Accumulator) AppendLeaf(leaf Hash, visit func(id compact.NodeID, h Hash)) {
	var fn compact.VisitFn
	if visit != nil {
		fn = func(id compact.NodeID, h []byte) { visit(id, Hash(h)) }
	}
	// Append fails only for a hash of the wrong length, which Hash rules out.
	if err := a.r.Append(leaf[:], fn); err != nil {
		panic(fmt.Sprintf("chain: accumulator append: %v", err))
	}
}

// Root returns the tree's root hash; [EmptyAccumulatorRoot] when empty.
func (a *Accumulator) Root() Hash {
	if a.r.End() == 0 {
		return EmptyAccumulatorRoot
	}
	root, err := a.r.GetRootHash(nil)
	if err != nil { // only for a range not starting at 0, which cannot be built here
		panic(fmt.Sprintf("chain: accumulator root: %v", err))
	}
	return Hash(root)
}

// Clone returns an independent copy of a.
func (a *Accumulator) Clone() *Accumulator {
	r, err := rangeFactory.NewRange(0, a.r.End(), slices.Clone(a.r.Hashes()))
	if err != nil {
		panic(fmt.Sprintf("chain: accumulator clone: %v", err))
	}
	return &Accumulator{r: r}
}
