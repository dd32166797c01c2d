package statetree

import (
	"encoding/binary"
	"fmt"

	"github.com/p2pnode/p2pnode/chain"
)

// Limits of a leaf, as the ledger's key/value transactions bound them.
const (
	MaxKeySize   = chain.MaxKeySize
	MaxValueSize = chain.MaxTxSize
)

// NodeKey names a stored node: the version that wrote it and its position,
// the first Depth bits of Path (the other bits are zero). The root of
// version V is at {V, 0, zero}.
type NodeKey struct {
	Version uint64
	Depth   uint16
	Path    chain.Hash
}

// nodeKeyMaxSize is the size of the largest encoded NodeKey.
const nodeKeyMaxSize = 8 + 2 + chain.HashSize

// AppendBinary appends the storage form of k to b: 8-byte big-endian
// Version, 2-byte big-endian Depth, then the ceil(Depth/8) bytes of Path
// that hold its first Depth bits. Keys of one version sort together, oldest
// version first, which lets a store prune by version range.
func (k NodeKey) AppendBinary(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, k.Version)
	b = binary.BigEndian.AppendUint16(b, k.Depth)
	return append(b, k.Path[:(int(k.Depth)+7)/8]...)
}

// ParseNodeKey decodes the form of [NodeKey.AppendBinary], strictly: the
// depth is at most MaxDepth, the length matches it and the unused bits of
// the last path byte are zero.
func ParseNodeKey(b []byte) (NodeKey, error) {
	var k NodeKey
	if len(b) < 10 {
		return k, fmt.Errorf("%w: node key of %d bytes", ErrCorrupt, len(b))
	}
	k.Version = binary.BigEndian.Uint64(b)
	k.Depth = binary.BigEndian.Uint16(b[8:])
	if k.Depth > MaxDepth {
		return k, fmt.Errorf("%w: node key depth %d", ErrCorrupt, k.Depth)
	}
	p := b[10:]
	if len(p) != (int(k.Depth)+7)/8 {
		return k, fmt.Errorf("%w: node key path of %d bytes for depth %d", ErrCorrupt, len(p), k.Depth)
	}
	copy(k.Path[:], p)
	if prefix(k.Path, int(k.Depth)) != k.Path {
		return k, fmt.Errorf("%w: node key path has bits past its depth", ErrCorrupt)
	}
	return k, nil
}

// Kind is the kind of a node or of a child reference.
type Kind uint8

// Kinds of nodes. An empty subtree is not stored, except as the root of an
// empty tree (a Null node).
const (
	KindNull     Kind = 0
	KindLeaf     Kind = 1
	KindInternal Kind = 2
)

// Child is an internal node's reference to a child: its kind, the version
// of the node stored at the child's position, and its hash. The zero Child
// is an empty subtree.
type Child struct {
	Kind    Kind
	Version uint64
	Hash    chain.Hash
}

// hash returns the child's hash, Placeholder for an empty child.
func (c Child) hash() chain.Hash {
	if c.Kind == KindNull {
		return Placeholder
	}
	return c.Hash
}

// Leaf is a key/value pair of the state. KeyHash is KeyHash(Key) and
// ValueHash is ValueHash(Value).
type Leaf struct {
	KeyHash   chain.Hash
	ValueHash chain.Hash
	Key       []byte
	Value     []byte
}

// Hash returns LeafHash(l.KeyHash, l.ValueHash).
func (l *Leaf) Hash() chain.Hash { return LeafHash(l.KeyHash, l.ValueHash) }

// Node is a stored node: a Null node (the root of an empty tree), a leaf,
// or an internal node with two children, of which at most one is empty.
type Node struct {
	Kind        Kind
	Left, Right Child // KindInternal
	Leaf        *Leaf // KindLeaf
}

// Hash returns the node's hash: Placeholder, the leaf's hash, or
// NodeHash(left, right).
func (n *Node) Hash() chain.Hash {
	switch n.Kind {
	case KindLeaf:
		return n.Leaf.Hash()
	case KindInternal:
		return NodeHash(n.Left.hash(), n.Right.hash())
	}
	return Placeholder
}

// AppendBinary appends the storage form of n to b:
//
//	Null:     0x00
//	Leaf:     0x01 | KeyHash | ValueHash | uvarint(len(Key)) | Key | Value
//	Internal: 0x02 | child(Left) | child(Right)
//	child:    0x00 (empty) | kind (0x01, 0x02) | uvarint(Version) | Hash
func (n *Node) AppendBinary(b []byte) []byte {
	b = append(b, byte(n.Kind))
	switch n.Kind {
	case KindLeaf:
		b = append(b, n.Leaf.KeyHash[:]...)
		b = append(b, n.Leaf.ValueHash[:]...)
		b = binary.AppendUvarint(b, uint64(len(n.Leaf.Key)))
		b = append(b, n.Leaf.Key...)
		b = append(b, n.Leaf.Value...)
	case KindInternal:
		for _, c := range [2]Child{n.Left, n.Right} {
			b = append(b, byte(c.Kind))
			if c.Kind != KindNull {
				b = binary.AppendUvarint(b, c.Version)
				b = append(b, c.Hash[:]...)
			}
		}
	}
	return b
}

// ParseNode decodes the form of [Node.AppendBinary], strictly: known kinds,
// sizes within MaxKeySize and MaxValueSize, no trailing bytes, and an
// internal node has no two empty children and no leaf beside an empty one
// (such a subtree is that leaf). The leaf's Key and Value alias b.
func ParseNode(b []byte) (*Node, error) {
	n := new(Node)
	if err := parseNode(b, n, nil); err != nil {
		return nil, err
	}
	return n, nil
}

// parseNode is ParseNode into n, with a leaf's Leaf from leaves (a new one
// if leaves is nil): the reads of an update allocate nothing per node.
func parseNode(b []byte, n *Node, leaves *leafSlab) error {
	if len(b) == 0 {
		return fmt.Errorf("%w: empty node", ErrCorrupt)
	}
	*n = Node{Kind: Kind(b[0])}
	b = b[1:]
	switch n.Kind {
	case KindNull:
		if len(b) != 0 {
			return fmt.Errorf("%w: null node with %d trailing bytes", ErrCorrupt, len(b))
		}
	case KindLeaf:
		if len(b) < 2*chain.HashSize+1 {
			return fmt.Errorf("%w: short leaf", ErrCorrupt)
		}
		var l *Leaf
		if leaves != nil {
			l = leaves.new()
		} else {
			l = new(Leaf)
		}
		copy(l.KeyHash[:], b)
		copy(l.ValueHash[:], b[chain.HashSize:])
		b = b[2*chain.HashSize:]
		kl, m := uvarint(b)
		if m <= 0 || kl == 0 || kl > MaxKeySize || uint64(len(b)-m) < kl {
			return fmt.Errorf("%w: leaf key length", ErrCorrupt)
		}
		b = b[m:]
		l.Key, l.Value = b[:kl:kl], b[kl:]
		if len(l.Value) > MaxValueSize {
			return fmt.Errorf("%w: leaf value of %d bytes", ErrCorrupt, len(l.Value))
		}
		n.Leaf = l
	case KindInternal:
		var cs [2]Child
		for i := range cs {
			if len(b) == 0 {
				return fmt.Errorf("%w: short internal node", ErrCorrupt)
			}
			cs[i].Kind = Kind(b[0])
			b = b[1:]
			switch cs[i].Kind {
			case KindNull:
				continue
			case KindLeaf, KindInternal:
			default:
				return fmt.Errorf("%w: child kind %d", ErrCorrupt, cs[i].Kind)
			}
			v, m := uvarint(b)
			if m <= 0 || len(b)-m < chain.HashSize {
				return fmt.Errorf("%w: short child", ErrCorrupt)
			}
			cs[i].Version = v
			copy(cs[i].Hash[:], b[m:])
			b = b[m+chain.HashSize:]
		}
		if len(b) != 0 {
			return fmt.Errorf("%w: internal node with %d trailing bytes", ErrCorrupt, len(b))
		}
		if !validChildren(cs[0].Kind, cs[1].Kind) {
			return fmt.Errorf("%w: internal node with children %d, %d", ErrCorrupt, cs[0].Kind, cs[1].Kind)
		}
		n.Left, n.Right = cs[0], cs[1]
	default:
		return fmt.Errorf("%w: node kind %d", ErrCorrupt, n.Kind)
	}
	return nil
}

// leafSlab hands out leaves from blocks of them, one allocation per 256
// leaves.
type leafSlab []Leaf

func (s *leafSlab) new() *Leaf {
	if len(*s) == 0 {
		*s = make([]Leaf, 256)
	}
	l := &(*s)[0]
	*s = (*s)[1:]
	return l
}

// uvarint decodes a minimally encoded uvarint at the start of b and returns
// it with its length, or a length of 0 if there is none: every value has
// one encoding, so a decoded node or proof encodes back to its input.
func uvarint(b []byte) (uint64, int) {
	v, m := binary.Uvarint(b)
	if m <= 0 || (m > 1 && b[m-1] == 0) {
		return 0, 0
	}
	return v, m
}

// validChildren reports whether an internal node may have children of
// kinds a and b: it has at least two leaves below it.
func validChildren(a, b Kind) bool {
	switch {
	case a == KindNull && b == KindNull:
		return false
	case a == KindNull:
		return b == KindInternal
	case b == KindNull:
		return a == KindInternal
	}
	return true
}

// NodeReader reads stored nodes. Implementations must be safe for
// concurrent use: an update reads subtrees in parallel.
type NodeReader interface {
	// Node returns the node stored under k, or an error wrapping
	// ErrNodeNotFound. The tree never modifies the node returned.
	Node(k NodeKey) (*Node, error)
}

// NodeEntry is a node written by an update.
type NodeEntry struct {
	Key  NodeKey
	Node *Node
}

// StaleNode records that the node at Key is not part of the tree from
// version StaleSince on: it may be deleted once no version below
// StaleSince needs to be read.
type StaleNode struct {
	StaleSince uint64
	Key        NodeKey
}

// Batch is the result of an update: the nodes to store and the nodes made
// stale, to be applied atomically. The version's root node is among Nodes.
type Batch struct {
	Version uint64
	Root    chain.Hash
	Nodes   []NodeEntry
	Stale   []StaleNode
}
