// Package syncertest provides an in-memory network of peers that serve
// blocks, committed ranges and ledger chunks, for tests and benchmarks of the syncer and of the
// packages built on it. Peers answer honestly through the same server
// functions as real nodes (syncer.ServeBlocks, syncer.ServeChunk) unless a
// hook replaces the answer, which is how tests build slow, silent, lying and
// corrupting peers. Every answer crosses the wire codec (canonical CBOR with
// the protocol's size limits), so a test sees what a real client would.
package syncertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/protocol"
	"github.com/p2pnode/p2pnode/syncer"
)

// ErrUnreachable is returned for a request to a peer that is not on the
// network.
var ErrUnreachable = errors.New("syncertest: peer unreachable")

// Peer is one serving peer.
type Peer struct {
	// Blocks serves block requests; nil answers IDNotFound.
	Blocks syncer.BlockSource
	// Ledger serves chunk and committed-range requests; nil answers
	// NotEnoughBlocks.
	Ledger *ledger.Ledger
	// Latency delays every answer (virtual time under testing/synctest).
	Latency time.Duration
	// BytesPerSecond, if positive, is the peer's uplink: each answer's
	// encoding takes its size over this rate to arrive, after Latency,
	// and the answers to concurrent requests share the link one after
	// another (virtual time under testing/synctest).
	BytesPerSecond float64
	// MaxResponseBytes caps a block response the way a server's byte limit
	// does; 0 means protocol.MaxBlockResponseSize.
	MaxResponseBytes int
	// OnBlocks, if set, answers block requests instead; honest returns what
	// an honest peer would answer.
	OnBlocks func(ctx context.Context, req protocol.BlockRequest, honest func() *protocol.BlockResponse) (*protocol.BlockResponse, error)
	// OnCommitted, if set, answers committed-range requests instead.
	OnCommitted func(ctx context.Context, req protocol.CommittedRequest, honest func() *protocol.CommittedResponse) (*protocol.CommittedResponse, error)
	// OnChunk, if set, answers chunk requests instead.
	OnChunk func(ctx context.Context, req protocol.ChunkRequest, honest func() *protocol.ChunkResponse) (*protocol.ChunkResponse, error)

	// OnState, if set, answers state requests instead.
	OnState func(ctx context.Context, req protocol.StateRequest, honest func() *protocol.StateResponse) (*protocol.StateResponse, error)
	// StateRequests counts the state requests the peer received.
	StateRequests atomic.Int64
	// BlockRequests, CommittedRequests and ChunkRequests count the
	// requests received.
	BlockRequests, CommittedRequests, ChunkRequests atomic.Int64

	linkMu    sync.Mutex
	busyUntil time.Time // when the link has sent what it was given
}

// Net is an in-memory syncer.Network. It is safe for concurrent use.
type Net struct {
	mu    sync.Mutex
	peers map[peer.ID]*Peer
	order []peer.ID
}

var _ syncer.Network = (*Net)(nil)

// NewNet returns an empty network.
func NewNet() *Net { return &Net{peers: make(map[peer.ID]*Peer)} }

// Add puts p on the network as id (replacing any peer of that id).
func (n *Net) Add(id peer.ID, p *Peer) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.peers[id]; !ok {
		n.order = append(n.order, id)
	}
	n.peers[id] = p
}

// Remove takes id off the network: requests to it fail.
func (n *Net) Remove(id peer.ID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.peers, id)
	n.order = slices.DeleteFunc(n.order, func(p peer.ID) bool { return p == id })
}

// Peer returns the peer of id, or nil.
func (n *Net) Peer(id peer.ID) *Peer {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.peers[id]
}

// Peers implements syncer.Network: the peers on the network, in the order
// they were added.
func (n *Net) Peers() []peer.ID {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.order)
}

func (n *Net) get(ctx context.Context, id peer.ID) (*Peer, error) {
	p := n.Peer(id)
	if p == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnreachable, id)
	}
	if p.Latency > 0 {
		t := time.NewTimer(p.Latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return p, nil
}

// RequestBlocks implements syncer.Network.
func (n *Net) RequestBlocks(ctx context.Context, id peer.ID, req protocol.BlockRequest) (*protocol.BlockResponse, error) {
	p, err := n.get(ctx, id)
	if err != nil {
		return nil, err
	}
	p.BlockRequests.Add(1)
	honest := func() *protocol.BlockResponse {
		if p.Blocks == nil {
			return &protocol.BlockResponse{Status: protocol.StatusIDNotFound}
		}
		limit := p.MaxResponseBytes
		if limit == 0 {
			limit = protocol.MaxBlockResponseSize
		}
		return syncer.ServeBlocks(p.Blocks, &req, limit)
	}
	var resp *protocol.BlockResponse
	if p.OnBlocks != nil {
		if resp, err = p.OnBlocks(ctx, req, honest); err != nil {
			return nil, err
		}
	} else {
		resp = honest()
	}
	var out protocol.BlockResponse
	if err := p.send(ctx, resp, protocol.MaxBlockResponseSize, &out); err != nil {
		return nil, err
	}
	return &out, ctx.Err()
}

// RequestCommitted implements syncer.Network.
func (n *Net) RequestCommitted(ctx context.Context, id peer.ID, req protocol.CommittedRequest) (*protocol.CommittedResponse, error) {
	p, err := n.get(ctx, id)
	if err != nil {
		return nil, err
	}
	p.CommittedRequests.Add(1)
	honest := func() *protocol.CommittedResponse {
		if p.Ledger == nil {
			return &protocol.CommittedResponse{Status: protocol.StatusNotEnoughBlocks}
		}
		limit := p.MaxResponseBytes
		if limit == 0 {
			limit = protocol.MaxCommittedResponseSize
		}
		return syncer.ServeCommitted(p.Ledger, &req, limit)
	}
	var resp *protocol.CommittedResponse
	if p.OnCommitted != nil {
		if resp, err = p.OnCommitted(ctx, req, honest); err != nil {
			return nil, err
		}
	} else {
		resp = honest()
	}
	var out protocol.CommittedResponse
	if err := p.send(ctx, resp, protocol.MaxCommittedResponseSize, &out); err != nil {
		return nil, err
	}
	return &out, ctx.Err()
}

// RequestChunk implements syncer.Network.
func (n *Net) RequestChunk(ctx context.Context, id peer.ID, req protocol.ChunkRequest) (*protocol.ChunkResponse, error) {
	p, err := n.get(ctx, id)
	if err != nil {
		return nil, err
	}
	p.ChunkRequests.Add(1)
	honest := func() *protocol.ChunkResponse {
		if p.Ledger == nil {
			return &protocol.ChunkResponse{Status: protocol.StatusNotEnoughBlocks}
		}
		return syncer.ServeChunk(p.Ledger, &req)
	}
	var resp *protocol.ChunkResponse
	if p.OnChunk != nil {
		if resp, err = p.OnChunk(ctx, req, honest); err != nil {
			return nil, err
		}
	} else {
		resp = honest()
	}
	var out protocol.ChunkResponse
	if err := p.send(ctx, resp, protocol.MaxChunkResponseSize, &out); err != nil {
		return nil, err
	}
	return &out, ctx.Err()
}

// RequestState implements syncer.Network.
func (n *Net) RequestState(ctx context.Context, id peer.ID, req protocol.StateRequest) (*protocol.StateResponse, error) {
	p, err := n.get(ctx, id)
	if err != nil {
		return nil, err
	}
	p.StateRequests.Add(1)
	honest := func() *protocol.StateResponse {
		if p.Ledger == nil {
			return &protocol.StateResponse{Status: protocol.StatusNotEnoughBlocks}
		}
		return syncer.ServeState(p.Ledger, &req)
	}
	var resp *protocol.StateResponse
	if p.OnState != nil {
		if resp, err = p.OnState(ctx, req, honest); err != nil {
			return nil, err
		}
	} else {
		resp = honest()
	}
	var out protocol.StateResponse
	if err := p.send(ctx, resp, protocol.MaxStateResponseSize, &out); err != nil {
		return nil, err
	}
	return &out, ctx.Err()
}

// send sends v through the codec and p's link: encoded, checked against
// the size limit, carried at p's rate and decoded strictly, as a real
// stream would. Failures are the sender's fault and wrap
// syncer.ErrMisbehaved; a ctx that ends while the link carries v returns
// its error.
func (p *Peer) send(ctx context.Context, v any, limit int, out any) error {
	enc, err := chain.Encode(v)
	if err != nil {
		return fmt.Errorf("%w: %w", syncer.ErrMisbehaved, err)
	}
	if len(enc) > limit {
		return fmt.Errorf("%w: response of %d bytes, limit %d", syncer.ErrMisbehaved, len(enc), limit)
	}
	if p.BytesPerSecond > 0 {
		p.linkMu.Lock()
		now := time.Now()
		if p.busyUntil.Before(now) {
			p.busyUntil = now
		}
		p.busyUntil = p.busyUntil.Add(time.Duration(float64(len(enc)) / p.BytesPerSecond * float64(time.Second)))
		t := time.NewTimer(p.busyUntil.Sub(now))
		p.linkMu.Unlock()
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := chain.Decode(enc, limit, out); err != nil {
		return fmt.Errorf("%w: %w", syncer.ErrMisbehaved, err)
	}
	return nil
}
