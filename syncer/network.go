package syncer

import (
	"context"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/protocol"
)

// Network is the syncer's view of the peer-to-peer network. Package node
// implements it over libp2p streams; tests use in-memory fakes.
//
// Each request honours ctx's deadline and cancellation. A returned response
// has been decoded within the protocol's size limits but is otherwise
// unverified: the syncer verifies everything before use. A returned error
// means no usable response (unreachable peer, reset stream, malformed or
// oversize frame, timeout); errors wrapping [ErrMisbehaved] are the peer's
// provable fault.
type Network interface {
	// RequestBlocks asks p for blocks.
	RequestBlocks(ctx context.Context, p peer.ID, req protocol.BlockRequest) (*protocol.BlockResponse, error)
	// RequestCommitted asks p for a range of its committed blocks.
	RequestCommitted(ctx context.Context, p peer.ID, req protocol.CommittedRequest) (*protocol.CommittedResponse, error)
	// RequestChunk asks p for a chunk of the ledger.
	RequestChunk(ctx context.Context, p peer.ID, req protocol.ChunkRequest) (*protocol.ChunkResponse, error)
	// RequestState asks p for a chunk of the state of a version.
	RequestState(ctx context.Context, p peer.ID, req protocol.StateRequest) (*protocol.StateResponse, error)
	// Peers returns the currently connected peers.
	Peers() []peer.ID
}
