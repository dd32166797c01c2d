package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/protocol"
	"github.com/p2pnode/p2pnode/syncer"
)

// Network is the syncer's network over libp2p streams: one stream per
// request, as docs/protocol.md section 7 says. A malformed or oversize
// response wraps syncer.ErrMisbehaved; a stream that fails, times out or is
// cancelled gives a plain error. It is safe for concurrent use.
type Network struct {
	h           host.Host
	blocksID    libp2pproto.ID
	committedID libp2pproto.ID
	chunksID    libp2pproto.ID
	stateID     libp2pproto.ID
	idle        time.Duration
	ops         *opsMetrics // nil: not measured
}

var _ syncer.Network = (*Network)(nil)

// DefaultStreamIdleTimeout is how long a request waits for the first byte
// of its response, and then for each next one, by default.
const DefaultStreamIdleTimeout = 5 * time.Second

// NewNetwork returns the network of chain chainID over h, whose requests
// fail once their response stalls for DefaultStreamIdleTimeout.
func NewNetwork(h host.Host, chainID string) *Network {
	return &Network{h: h, blocksID: protocol.BlocksID(chainID), committedID: protocol.CommittedID(chainID),
		chunksID: protocol.ChunksID(chainID), stateID: protocol.StateID(chainID), idle: DefaultStreamIdleTimeout}
}

// SetIdleTimeout sets how long a request waits for the first byte of its
// response and for each next one (it must be positive); call it before the
// network is used. A response that keeps coming may take as long as the
// request's context allows, which the syncer sizes to the response's bytes
// and the peer's rate; a peer that stops sending fails the request at
// once, so that a long timeout for a large answer does not also give a
// stalled peer that long.
func (n *Network) SetIdleTimeout(d time.Duration) { n.idle = d }

// RequestBlocks asks p for blocks.
func (n *Network) RequestBlocks(ctx context.Context, p peer.ID, req protocol.BlockRequest) (*protocol.BlockResponse, error) {
	var resp protocol.BlockResponse
	if err := n.request(ctx, p, n.blocksID, &req, protocol.MaxBlockResponseSize, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// RequestCommitted asks p for a range of its committed blocks.
func (n *Network) RequestCommitted(ctx context.Context, p peer.ID, req protocol.CommittedRequest) (*protocol.CommittedResponse, error) {
	var resp protocol.CommittedResponse
	if err := n.request(ctx, p, n.committedID, &req, protocol.MaxCommittedResponseSize, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// RequestChunk asks p for a chunk of the ledger.
func (n *Network) RequestChunk(ctx context.Context, p peer.ID, req protocol.ChunkRequest) (*protocol.ChunkResponse, error) {
	var resp protocol.ChunkResponse
	if err := n.request(ctx, p, n.chunksID, &req, protocol.MaxChunkResponseSize, &resp); err != nil {
		return nil, err
	}
	if resp.Status == protocol.StatusSucceeded && resp.Chunk == nil {
		return nil, fmt.Errorf("%w: %s: chunk response succeeded without a chunk", syncer.ErrMisbehaved, p)
	}
	return &resp, nil
}

// RequestState asks p for a chunk of the state of a version.
func (n *Network) RequestState(ctx context.Context, p peer.ID, req protocol.StateRequest) (*protocol.StateResponse, error) {
	var resp protocol.StateResponse
	if err := n.request(ctx, p, n.stateID, &req, protocol.MaxStateResponseSize, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Peers returns the connected peers.
func (n *Network) Peers() []peer.ID { return n.h.Network().Peers() }

// request writes req on a new stream to p, closes its write side and reads
// one response frame of at most limit bytes into resp. The stream is closed
// on success and reset on any error; ctx's deadline bounds the whole
// exchange and its cancellation resets the stream.
func (n *Network) request(ctx context.Context, p peer.ID, id libp2pproto.ID, req any, limit int, resp any) (err error) {
	defer n.ops.observeRequest(protoName(id), sideClient, time.Now())
	s, err := n.h.NewStream(ctx, p, id)
	if err != nil {
		return fmt.Errorf("node: open %s stream to %s: %w", id, p, err)
	}
	s = n.ops.count(s, protoName(id))
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer func() {
		stop()
		if err != nil {
			_ = s.Reset()
			switch {
			case errors.Is(err, syncer.ErrMisbehaved):
			case ctx.Err() != nil:
				err = fmt.Errorf("node: %s request to %s: %w (%w)", id, p, ctx.Err(), err)
			case isTimeout(err):
				// The stream's deadline is ctx's and may fire a moment
				// before ctx itself reports it.
				err = fmt.Errorf("node: %s request to %s: %w (%w)", id, p, context.DeadlineExceeded, err)
			}
			return
		}
		_ = s.Close()
	}()
	if dl, ok := ctx.Deadline(); ok {
		if err := s.SetDeadline(dl); err != nil {
			return fmt.Errorf("node: set deadline: %w", err)
		}
	}
	if err := protocol.WriteMsg(s, req); err != nil {
		return fmt.Errorf("node: write %s request to %s: %w", id, p, err)
	}
	// A server reads one frame and may answer and stop reading before the
	// close of the write side reaches it (over QUIC the close then fails
	// with "close called for canceled stream"): the request is out, so the
	// answer is what counts, and a stream that really failed fails the read.
	_ = s.CloseWrite()
	if err := protocol.ReadMsg(idleReader{s: s, idle: n.idle}, limit, resp); err != nil {
		if ctx.Err() == nil && isPeerFault(err) {
			return fmt.Errorf("%w: %s response from %s: %w", syncer.ErrMisbehaved, id, p, err)
		}
		return fmt.Errorf("node: read %s response from %s: %w", id, p, err)
	}
	return nil
}

// idleReader reads s with a read deadline idle after each read begins. It
// replaces the read deadline that request set from its context's; the
// context still bounds the whole exchange, since request resets the
// stream when the context ends.
type idleReader struct {
	s    network.Stream
	idle time.Duration
}

func (r idleReader) Read(p []byte) (int, error) {
	if err := r.s.SetReadDeadline(time.Now().Add(r.idle)); err != nil {
		return 0, err
	}
	return r.s.Read(p)
}

// isTimeout reports whether err is a stream or connection timeout.
func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// isPeerFault reports whether a read error proves the sender broke the
// protocol: a malformed, empty, oversize or truncated frame, a clean end of
// stream instead of a response, or bytes that do not decode.
func isPeerFault(err error) bool {
	return errors.Is(err, protocol.ErrFrameTooLarge) ||
		errors.Is(err, protocol.ErrFrameEmpty) ||
		errors.Is(err, protocol.ErrFrameLength) ||
		errors.Is(err, chain.ErrDecode) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF)
}
