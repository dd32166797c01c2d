package statetree

import "errors"

// Errors of the tree. A proof that fails verification is reported as a
// [*chain.VerifyError] whose Reason is one of ErrWrongRoot, ErrValueMismatch,
// ErrKeyMissing, ErrKeyPresent, ErrOutOfOrder, ErrGap, ErrEmptyRange or
// ErrMalformedProof, so a caller can penalise the peer that sent it
// (errors.As) and tell the cases apart (errors.Is).
var (
	// ErrWrongRoot: the proof and the claimed leaves give another root.
	// Tampered values, tampered siblings and leaves left out of the inside
	// of a range all end here: a hash cannot tell them apart.
	ErrWrongRoot = errors.New("statetree: proof does not give the root")
	// ErrValueMismatch: the proof is for the key, but for another value.
	ErrValueMismatch = errors.New("statetree: value does not match the proof")
	// ErrKeyMissing: an inclusion proof shows the key absent.
	ErrKeyMissing = errors.New("statetree: key missing")
	// ErrKeyPresent: a non-inclusion proof shows the key present.
	ErrKeyPresent = errors.New("statetree: key present")
	// ErrOutOfOrder: the leaves of a range are not in strictly increasing
	// key-hash order, or a chunk does not start after the previous one.
	ErrOutOfOrder = errors.New("statetree: leaves out of order")
	// ErrGap: a chunk does not continue the previous one: leaves between
	// them are missing (or the proof lies about the left part).
	ErrGap = errors.New("statetree: gap between chunks")
	// ErrEmptyRange: a range proof without leaves.
	ErrEmptyRange = errors.New("statetree: empty range")
	// ErrMalformedProof: a proof of impossible shape (depths, sibling
	// counts, leaf positions).
	ErrMalformedProof = errors.New("statetree: malformed proof")

	// ErrNodeNotFound: a node the tree needs is not in its storage (a
	// pruned version, or a version never committed).
	ErrNodeNotFound = errors.New("statetree: node not found")
	// ErrUnsortedWrites: the writes of a batch are not in strictly
	// increasing key-hash order.
	ErrUnsortedWrites = errors.New("statetree: writes not sorted by key hash")
	// ErrVersion: an update's version is not above its base version.
	ErrVersion = errors.New("statetree: version not above base")
	// ErrCorrupt: the storage holds a node of impossible shape or encoding.
	ErrCorrupt = errors.New("statetree: corrupt node")
)
