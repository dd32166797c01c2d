package protocol

import (
	"errors"
	"fmt"

	"github.com/p2pnode/p2pnode/chain"
)

// Block retrieval limits.
const (
	// MaxBlocksPerRequest caps BlockRequest.Count.
	MaxBlocksPerRequest = 256
	// MaxBlockRequestSize caps an encoded BlockRequest.
	MaxBlockRequestSize = 128
	// MaxBlockResponseSize caps an encoded BlockResponse. A server stops
	// adding blocks before the response would pass it, but always sends at
	// least one block, which is at most chain.MaxEncodedBlockSize.
	MaxBlockResponseSize = 16 << 20
)

// Status is the outcome a server reports for a request.
type Status uint8

// Block retrieval statuses.
const (
	// StatusSucceeded: exactly Count blocks, or fewer when the byte limit
	// cut the response (the client asks again for the rest).
	StatusSucceeded Status = 1
	// StatusSucceededWithTarget: the walk reached Target; the blocks end
	// with the target's child and the target itself is not included.
	StatusSucceededWithTarget Status = 2
	// StatusNotEnoughBlocks: the server knows BlockID but not all of the
	// Count ancestors asked for; the blocks it has are included.
	StatusNotEnoughBlocks Status = 3
	// StatusIDNotFound: the server does not know BlockID.
	StatusIDNotFound Status = 4
	// StatusBusy: the server is rate-limiting this client; try later or
	// elsewhere.
	StatusBusy Status = 5
	// StatusBadRequest: the request broke the protocol's limits.
	StatusBadRequest Status = 6
	// StatusPruned: the server keeps no history below the first
	// committed round or version asked for (it pruned it, or state-synced
	// past it); ask a peer that keeps more. Used by committed ranges and
	// chunks.
	StatusPruned Status = 7
)

func (s Status) String() string {
	switch s {
	case StatusSucceeded:
		return "succeeded"
	case StatusSucceededWithTarget:
		return "succeeded_with_target"
	case StatusNotEnoughBlocks:
		return "not_enough_blocks"
	case StatusIDNotFound:
		return "id_not_found"
	case StatusBusy:
		return "busy"
	case StatusBadRequest:
		return "bad_request"
	case StatusPruned:
		return "pruned"
	default:
		return fmt.Sprintf("status(%d)", uint8(s))
	}
}

// BlockRequest asks for up to Count blocks: BlockID, then its parent, and so
// on, newest first. If Target is not zero the server stops before Target, a
// block the client already has.
type BlockRequest struct {
	_       struct{} `cbor:",toarray"`
	BlockID chain.Hash
	Count   uint32
	Target  chain.Hash
}

// ErrBadRequest is the reason of request validation errors.
var ErrBadRequest = errors.New("protocol: bad request")

// Validate checks the request against the protocol's limits.
func (r *BlockRequest) Validate() error {
	if r.Count == 0 || r.Count > MaxBlocksPerRequest {
		return fmt.Errorf("%w: count %d, want 1 to %d", ErrBadRequest, r.Count, MaxBlocksPerRequest)
	}
	if r.BlockID.IsZero() {
		return fmt.Errorf("%w: zero block id", ErrBadRequest)
	}
	return nil
}

// BlockResponse answers a BlockRequest: the blocks newest first, each the
// parent of the one before.
type BlockResponse struct {
	_      struct{} `cbor:",toarray"`
	Status Status
	Blocks []*chain.Block
}
