package chain

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Transactions are opaque byte strings of 1 to MaxTxSize bytes; every
// transaction in a committed block is in the ledger, in order. A transaction
// that has the key/value form below also writes its value under its key in
// the ledger's state; any other transaction is recorded but changes no state.
//
// Key/value form:
//
//	0x01 | uvarint(len(key)) | key | value
//
// with 1 ≤ len(key) ≤ MaxKeySize; the value is the rest (possibly empty).
const (
	// TxKindKV is the first byte of a key/value transaction.
	TxKindKV byte = 0x01
	// MaxKeySize caps the key of a key/value transaction.
	MaxKeySize = 256
)

// ErrNotKV is returned by [DecodeKV] for a transaction that is not of the
// key/value form.
var ErrNotKV = errors.New("chain: not a key/value transaction")

// EncodeKV returns the key/value transaction writing value under key.
func EncodeKV(key, value []byte) ([]byte, error) {
	if len(key) == 0 || len(key) > MaxKeySize {
		return nil, fmt.Errorf("chain: key has %d bytes, want 1 to %d", len(key), MaxKeySize)
	}
	tx := make([]byte, 0, 1+binary.MaxVarintLen64+len(key)+len(value))
	tx = append(tx, TxKindKV)
	tx = binary.AppendUvarint(tx, uint64(len(key)))
	tx = append(tx, key...)
	tx = append(tx, value...)
	if len(tx) > MaxTxSize {
		return nil, fmt.Errorf("chain: transaction has %d bytes, limit %d", len(tx), MaxTxSize)
	}
	return tx, nil
}

// DecodeKV splits a key/value transaction. The returned slices alias tx.
func DecodeKV(tx []byte) (key, value []byte, err error) {
	if len(tx) < 3 || tx[0] != TxKindKV {
		return nil, nil, ErrNotKV
	}
	n, w := binary.Uvarint(tx[1:])
	if w <= 0 || n == 0 || n > MaxKeySize || uint64(len(tx)-1-w) < n {
		return nil, nil, ErrNotKV
	}
	key = tx[1+w : 1+w+int(n)]
	return key, tx[1+w+int(n):], nil
}
