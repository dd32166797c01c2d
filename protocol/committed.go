package protocol

import (
	"fmt"

	"github.com/p2pnode/p2pnode/chain"
)

// Committed-range limits. A CommittedResponse has the limits of a
// BlockResponse: at most MaxBlocksPerRequest blocks and
// MaxBlockResponseSize bytes.
const (
	// MaxCommittedRequestSize caps an encoded CommittedRequest.
	MaxCommittedRequestSize = 64
	// MaxCommittedResponseSize caps an encoded CommittedResponse.
	MaxCommittedResponseSize = MaxBlockResponseSize
)

// CommittedRequest asks for the server's committed blocks of rounds
// [FromRound, ToRound), oldest first, at most MaxBlocks of them. It lets a
// node far behind fetch the committed chain forward, in windows of rounds
// that it can ask of several peers at once.
type CommittedRequest struct {
	_         struct{} `cbor:",toarray"`
	FromRound uint64
	ToRound   uint64
	MaxBlocks uint32
}

// Validate checks the request against the protocol's limits.
func (r *CommittedRequest) Validate() error {
	if r.FromRound >= r.ToRound {
		return fmt.Errorf("%w: from round %d not below to round %d", ErrBadRequest, r.FromRound, r.ToRound)
	}
	if r.MaxBlocks == 0 || r.MaxBlocks > MaxBlocksPerRequest {
		return fmt.Errorf("%w: max blocks %d, want 1 to %d", ErrBadRequest, r.MaxBlocks, MaxBlocksPerRequest)
	}
	return nil
}

// CommittedResponse answers a CommittedRequest. With StatusSucceeded,
// Blocks are the server's committed blocks of the requested rounds in
// ascending round order, each the parent of the next, possibly fewer than
// all of them when MaxBlocks or the server's byte limit cut the answer (the
// client then asks again from the last block's round + 1).
// StatusNotEnoughBlocks means the server's committed chain does not reach
// ToRound-1; Blocks holds what it has of the range. StatusBadRequest and
// StatusBusy carry no blocks.
type CommittedResponse struct {
	_      struct{} `cbor:",toarray"`
	Status Status
	Blocks []*chain.Block
}

// DecodeCommittedRequest decodes a request frame's body and validates it.
func DecodeCommittedRequest(data []byte) (*CommittedRequest, error) {
	var r CommittedRequest
	if err := chain.Decode(data, MaxCommittedRequestSize, &r); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// DecodeCommittedResponse decodes a response frame's body: well-formed
// CBOR within MaxCommittedResponseSize, at most MaxBlocksPerRequest blocks,
// none missing. The blocks are not verified.
func DecodeCommittedResponse(data []byte) (*CommittedResponse, error) {
	var r CommittedResponse
	if err := chain.Decode(data, MaxCommittedResponseSize, &r); err != nil {
		return nil, err
	}
	if len(r.Blocks) > MaxBlocksPerRequest {
		return nil, fmt.Errorf("%w: %d blocks, limit %d", chain.ErrDecode, len(r.Blocks), MaxBlocksPerRequest)
	}
	for i, b := range r.Blocks {
		if b == nil {
			return nil, fmt.Errorf("%w: block %d is missing", chain.ErrDecode, i)
		}
	}
	return &r, nil
}
