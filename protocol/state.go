package protocol

import (
	"fmt"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/chain/statetree"
)

// State snapshot limits.
const (
	// MaxStateRequestSize caps an encoded StateRequest.
	MaxStateRequestSize = 64
	// MaxStateResponseSize caps an encoded StateResponse: the chunk's keys
	// and values, a few bytes of framing per leaf, the proof's siblings
	// (at most 256 on each side) and the frontier (at most 64 hashes).
	MaxStateResponseSize = ledger.MaxSnapshotBytes + chain.MaxKeySize + chain.MaxTxSize +
		8*ledger.MaxSnapshotLeaves + (2*statetree.MaxDepth+64)*(chain.HashSize+2) + 256
)

// StateRequest asks for a chunk of the state tree of Version: its leaves
// in key-hash order from the first whose key hash is at least Start, at
// most MaxLeaves of them, with their range proof. WithFrontier asks for
// the accumulator's compact range of [0, Version) too, which a client
// restoring the snapshot needs once.
type StateRequest struct {
	_            struct{} `cbor:",toarray"`
	Version      uint64
	Start        chain.Hash
	MaxLeaves    uint32
	WithFrontier bool
}

// Validate checks the request against the protocol's limits.
func (r *StateRequest) Validate() error {
	if r.Version == 0 {
		return fmt.Errorf("%w: state of version 0", ErrBadRequest)
	}
	if r.MaxLeaves == 0 || r.MaxLeaves > ledger.MaxSnapshotLeaves {
		return fmt.Errorf("%w: max leaves %d, want 1 to %d", ErrBadRequest, r.MaxLeaves, ledger.MaxSnapshotLeaves)
	}
	return nil
}

// StateResponse answers a StateRequest. On StatusSucceeded, Chunk holds
// at least one leaf, or is nil when no leaf of the version is at or after
// Start; Frontier is present exactly when the request asked for it.
// StatusNotEnoughBlocks: the server's state tree has not reached Version;
// StatusPruned: the server keeps no tree of Version (pruned, or never
// stored: a node that caught up by sync stores trees only at some
// versions); StatusBusy: try later or elsewhere.
type StateResponse struct {
	_        struct{} `cbor:",toarray"`
	Status   Status
	Chunk    *ledger.StateChunk
	Frontier []chain.Hash
}
