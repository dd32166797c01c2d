package protocol

import (
	"fmt"

	"github.com/p2pnode/p2pnode/chain/ledger"
)

// Chunk retrieval limits.
const (
	// MaxChunkRequestSize caps an encoded ChunkRequest.
	MaxChunkRequestSize = 64
	// MaxChunkResponseSize caps an encoded ChunkResponse.
	MaxChunkResponseSize = ledger.MaxChunkEncoded + 64
)

// ChunkRequest asks for the committed transactions of versions
// [StartVersion, StartVersion+MaxTxs) with a proof against the ledger's
// accumulator at version TargetVersion (the version of the signed ledger
// info the client syncs to). The server may send fewer transactions.
type ChunkRequest struct {
	_             struct{} `cbor:",toarray"`
	StartVersion  uint64
	TargetVersion uint64
	MaxTxs        uint32
}

// Validate checks the request against the protocol's limits.
func (r *ChunkRequest) Validate() error {
	if r.StartVersion >= r.TargetVersion {
		return fmt.Errorf("%w: start version %d not below target %d", ErrBadRequest, r.StartVersion, r.TargetVersion)
	}
	if r.MaxTxs == 0 || r.MaxTxs > ledger.MaxChunkTxs {
		return fmt.Errorf("%w: max txs %d, want 1 to %d", ErrBadRequest, r.MaxTxs, ledger.MaxChunkTxs)
	}
	return nil
}

// ChunkResponse answers a ChunkRequest. Chunk is present exactly when Status
// is StatusSucceeded; StatusNotEnoughBlocks then means the server's ledger
// has not reached TargetVersion.
type ChunkResponse struct {
	_      struct{} `cbor:",toarray"`
	Status Status
	Chunk  *ledger.Chunk
}
