package statetree

import (
	"crypto/sha256"

	"github.com/p2pnode/p2pnode/chain"
)

// Domain tags of the state tree's hashes (see the package documentation).
// Both are 20 bytes, so a leaf or an internal node is hashed in two
// SHA-256 blocks.
const (
	DomainLeaf = "P2PNODE::StateLeaf/1"
	DomainNode = "P2PNODE::StateNode/1"
)

// MaxDepth is the depth of the tree: a key hash has 256 bits, and two
// distinct key hashes differ in one of them, so no leaf is deeper.
const MaxDepth = 8 * chain.HashSize

// Placeholder is the hash of an empty subtree: 32 zero bytes. It is not the
// output of any hash of the tree, so an empty subtree is never confused with
// a leaf or an internal node.
var Placeholder chain.Hash

// KeyHash returns the path of key in the tree: SHA-256(key).
func KeyHash(key []byte) chain.Hash { return sha256.Sum256(key) }

// ValueHash returns SHA-256(value), the commitment of a leaf to its value.
func ValueHash(value []byte) chain.Hash { return sha256.Sum256(value) }

// LeafHash returns SHA-256(DomainLeaf || keyHash || valueHash).
func LeafHash(keyHash, valueHash chain.Hash) chain.Hash {
	var buf [len(DomainLeaf) + 2*chain.HashSize]byte
	copy(buf[:], DomainLeaf)
	copy(buf[len(DomainLeaf):], keyHash[:])
	copy(buf[len(DomainLeaf)+chain.HashSize:], valueHash[:])
	return sha256.Sum256(buf[:])
}

// NodeHash returns SHA-256(DomainNode || left || right), the hash of an
// internal node whose children hash to left and right (Placeholder for an
// empty child).
func NodeHash(left, right chain.Hash) chain.Hash {
	var buf [len(DomainNode) + 2*chain.HashSize]byte
	copy(buf[:], DomainNode)
	copy(buf[len(DomainNode):], left[:])
	copy(buf[len(DomainNode)+chain.HashSize:], right[:])
	return sha256.Sum256(buf[:])
}

// bit returns bit d of h, counting from the most significant bit of h[0]:
// 0 sends the path left, 1 right. Key hashes sorted as big-endian numbers
// are thus in left-to-right leaf order.
func bit(h *chain.Hash, d int) byte {
	return h[d>>3] >> (7 - uint(d&7)) & 1
}

// withBit returns p with bit d set to b.
func withBit(p chain.Hash, d int, b byte) chain.Hash {
	if b == 1 {
		p[d>>3] |= 1 << (7 - uint(d&7))
	} else {
		p[d>>3] &^= 1 << (7 - uint(d&7))
	}
	return p
}

// prefix returns h with every bit from d on cleared.
func prefix(h chain.Hash, d int) chain.Hash {
	if d >= MaxDepth {
		return h
	}
	i := d >> 3
	h[i] &= ^byte(0xff >> uint(d&7))
	for j := i + 1; j < len(h); j++ {
		h[j] = 0
	}
	return h
}

// commonPrefix returns the number of leading bits a and b share (MaxDepth if
// they are equal).
func commonPrefix(a, b *chain.Hash) int {
	for i := 0; i < len(a); i++ {
		if x := a[i] ^ b[i]; x != 0 {
			n := 0
			for x&0x80 == 0 {
				x <<= 1
				n++
			}
			return 8*i + n
		}
	}
	return MaxDepth
}
