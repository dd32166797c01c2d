package chain

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// HashSize is the size of a [Hash] in bytes.
const HashSize = sha256.Size

// Hash is a SHA-256 digest. Block ids, state ids and the consensus data hash
// are all of this type. The zero Hash means "none".
type Hash [HashSize]byte

// ZeroHash is the zero value of [Hash].
var ZeroHash Hash

// IsZero reports whether h is the zero hash.
func (h Hash) IsZero() bool { return h == ZeroHash }

// String returns the full lowercase hex form of h.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Short returns the first 8 hex digits of h, for logs.
func (h Hash) Short() string { return hex.EncodeToString(h[:4]) }

// MarshalCBOR encodes h as a 32-byte CBOR byte string.
func (h Hash) MarshalCBOR() ([]byte, error) {
	out := make([]byte, 2+HashSize)
	out[0], out[1] = 0x58, HashSize // byte string, 1-byte length
	copy(out[2:], h[:])
	return out, nil
}

// UnmarshalCBOR decodes a CBOR byte string of exactly 32 bytes into h.
// Any other length is an error, never a padded or truncated hash.
func (h *Hash) UnmarshalCBOR(data []byte) error {
	if len(data) != 2+HashSize || data[0] != 0x58 || data[1] != HashSize {
		return fmt.Errorf("chain: hash must be a %d-byte CBOR byte string", HashSize)
	}
	copy(h[:], data[2:])
	return nil
}

// ParseHash parses the 64-hex-digit form produced by [Hash.String].
func ParseHash(s string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(s)
	if err != nil {
		return h, fmt.Errorf("chain: parse hash: %w", err)
	}
	if len(b) != HashSize {
		return h, fmt.Errorf("chain: parse hash: want %d bytes, got %d", HashSize, len(b))
	}
	copy(h[:], b)
	return h, nil
}

// Domain tags: the first bytes hashed for each kind of object. They are part
// of the protocol (docs/protocol.md, "Signing domains") and never change for
// a given version.
const (
	DomainBlock      = "P2PNODE::BlockData/1"
	DomainVoteData   = "P2PNODE::VoteData/1"
	DomainLedgerInfo = "P2PNODE::LedgerInfo/1"
	DomainTimeout    = "P2PNODE::Timeout/1"
	DomainGenesis    = "P2PNODE::Genesis/1"
	DomainTx         = "P2PNODE::Transaction/1"
)

// HashOf returns SHA-256(domain || canonical CBOR of v). It panics only if v
// is of a type the codec cannot encode, which is a programming error.
func HashOf(domain string, v any) Hash {
	d := sha256.New()
	d.Write([]byte(domain))
	// The encoder writes the canonical encoding straight into the hash,
	// through a pooled buffer: hashing a block allocates nothing of its size.
	if err := encMode.NewEncoder(d).Encode(v); err != nil {
		panic(fmt.Sprintf("chain: encode %T: %v", v, err))
	}
	var h Hash
	d.Sum(h[:0])
	return h
}

// HashBytes returns SHA-256(domain || b) for an already canonical encoding b.
func HashBytes(domain string, b []byte) Hash {
	d := sha256.New()
	d.Write([]byte(domain))
	d.Write(b)
	var h Hash
	d.Sum(h[:0])
	return h
}
