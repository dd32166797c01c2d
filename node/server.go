package node

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/blockstore"
	"github.com/p2pnode/p2pnode/protocol"
	"github.com/p2pnode/p2pnode/syncer"
)

// maxBlockResponse is the protocol's cap on an encoded block response.
const maxBlockResponse = protocol.MaxBlockResponseSize

// server answers the block, committed-range and chunk protocols from the local chain. Each
// stream is handled on the goroutine libp2p gives it; the resource
// manager's service limits bound how many run at once. It is safe for
// concurrent use.
type server struct {
	store   *blockstore.Store
	genesis *chain.Block // served by block retrieval even once pruned
	limiter *rateLimiter
	bytes   *rateLimiter // response bytes per peer (see Limits.ServeBytesRate)
	limits  Limits
	log     *slog.Logger
	served  func(proto string, st protocol.Status) // counts answers
}

// handleBlocks serves one block request.
func (s *server) handleBlocks(st network.Stream) {
	var req protocol.BlockRequest
	if !s.readRequest(st, protocol.MaxBlockRequestSize, &req) {
		return
	}
	resp := &protocol.BlockResponse{Status: protocol.StatusBusy}
	p := st.Conn().RemotePeer()
	if s.allow(p) {
		resp = syncer.ServeBlocks(syncer.BlockSourceFunc(s.getBlock), &req, s.limits.MaxBlockResponseBytes-4096)
	}
	body, err := encodeBlockResponse(resp, s.limits.MaxBlockResponseBytes)
	if err != nil {
		s.log.Error("encode block response", "err", err)
		_ = st.Reset()
		return
	}
	s.charge(p, resp.Status, len(body))
	s.writeResponse(st, "blocks", resp.Status, body)
}

// getBlock is the block source of block retrieval: the store's blocks and
// the genesis block, which every node has (docs/protocol.md section 7.4).
func (s *server) getBlock(id chain.Hash) (*chain.Block, bool) {
	if s.genesis != nil && id == s.genesis.ID {
		return s.genesis, true
	}
	return s.store.GetBlock(id)
}

// handleCommitted serves one committed-range request.
func (s *server) handleCommitted(st network.Stream) {
	var req protocol.CommittedRequest
	if !s.readRequest(st, protocol.MaxCommittedRequestSize, &req) {
		return
	}
	resp := &protocol.CommittedResponse{Status: protocol.StatusBusy}
	p := st.Conn().RemotePeer()
	if s.allow(p) {
		resp = syncer.ServeCommitted(s.store.Ledger(), &req, s.limits.MaxBlockResponseBytes-4096)
	}
	body, err := encodeCommittedResponse(resp, s.limits.MaxBlockResponseBytes)
	if err != nil {
		s.log.Error("encode committed response", "err", err)
		_ = st.Reset()
		return
	}
	s.charge(p, resp.Status, len(body))
	s.writeResponse(st, "committed", resp.Status, body)
}

// handleChunks serves one chunk request.
func (s *server) handleChunks(st network.Stream) {
	var req protocol.ChunkRequest
	if !s.readRequest(st, protocol.MaxChunkRequestSize, &req) {
		return
	}
	resp := &protocol.ChunkResponse{Status: protocol.StatusBusy}
	p := st.Conn().RemotePeer()
	if s.allow(p) {
		resp = syncer.ServeChunk(s.store.Ledger(), &req)
	}
	body, err := chain.Encode(resp)
	if err != nil {
		s.log.Error("encode chunk response", "err", err)
		_ = st.Reset()
		return
	}
	s.charge(p, resp.Status, len(body))
	s.writeResponse(st, "chunks", resp.Status, body)
}

// handleState serves one state chunk request.
func (s *server) handleState(st network.Stream) {
	var req protocol.StateRequest
	if !s.readRequest(st, protocol.MaxStateRequestSize, &req) {
		return
	}
	resp := &protocol.StateResponse{Status: protocol.StatusBusy}
	p := st.Conn().RemotePeer()
	if s.allow(p) {
		resp = syncer.ServeState(s.store.Ledger(), &req)
	}
	body, err := chain.Encode(resp)
	if err != nil {
		s.log.Error("encode state response", "err", err)
		_ = st.Reset()
		return
	}
	s.charge(p, resp.Status, len(body))
	s.writeResponse(st, "state", resp.Status, body)
}

// allow reports whether p may be served now: a token of its request bucket,
// and its byte bucket not in debt.
func (s *server) allow(p peer.ID) bool {
	return s.bytes.ready(p) && s.limiter.allow(p)
}

// charge takes the n bytes of a response to p from p's byte bucket, unless
// it is the busy answer of a refusal.
func (s *server) charge(p peer.ID, st protocol.Status, n int) {
	if st != protocol.StatusBusy {
		s.bytes.take(p, float64(n))
	}
}

// readRequest puts st in the sync service and reads one request frame of at
// most limit bytes into req before the request timeout. On failure it
// resets st and returns false.
func (s *server) readRequest(st network.Stream, limit int, req any) bool {
	if err := st.Scope().SetService(syncService); err != nil {
		s.log.Debug("sync service scope", "peer", st.Conn().RemotePeer(), "err", err)
		_ = st.Reset()
		return false
	}
	if err := st.SetReadDeadline(time.Now().Add(s.limits.RequestTimeout)); err != nil {
		_ = st.Reset()
		return false
	}
	if err := protocol.ReadMsg(st, limit, req); err != nil {
		lvl := slog.LevelDebug // a reset, a timeout or a client that gave up
		if isPeerFault(err) && !errors.Is(err, io.EOF) {
			lvl = slog.LevelWarn
		}
		s.log.Log(context.Background(), lvl, "bad request", "peer", st.Conn().RemotePeer(), "protocol", st.Protocol(), "err", err)
		_ = st.Reset()
		return false
	}
	return true
}

// writeResponse writes body as one frame before its deadline
// (responseTimeout) and closes st; the memory of body is reserved in st's scope first, and a
// response the scope cannot afford is replaced by busy.
func (s *server) writeResponse(st network.Stream, proto string, status protocol.Status, body []byte) {
	if err := st.Scope().ReserveMemory(len(body), network.ReservationPriorityMedium); err != nil {
		s.log.Debug("response over memory limit", "peer", st.Conn().RemotePeer(), "bytes", len(body), "err", err)
		status = protocol.StatusBusy
		if body, err = busyResponse(proto); err != nil {
			_ = st.Reset()
			return
		}
	} else {
		defer st.Scope().ReleaseMemory(len(body))
	}
	if err := st.SetWriteDeadline(time.Now().Add(responseTimeout(s.limits, len(body)))); err != nil {
		_ = st.Reset()
		return
	}
	if err := protocol.WriteFrame(st, body); err != nil {
		s.log.Debug("write response", "peer", st.Conn().RemotePeer(), "protocol", st.Protocol(), "err", err)
		_ = st.Reset()
		return
	}
	s.served(proto, status)
	_ = st.Close()
}

// responseTimeout is how long a server may take to write a response of n
// bytes under l.
func responseTimeout(l Limits, n int) time.Duration {
	return l.ResponseTimeout + time.Duration(float64(n)/l.MinResponseRate*float64(time.Second))
}

func busyResponse(proto string) ([]byte, error) {
	switch proto {
	case "blocks":
		return chain.Encode(&protocol.BlockResponse{Status: protocol.StatusBusy})
	case "committed":
		return chain.Encode(&protocol.CommittedResponse{Status: protocol.StatusBusy})
	case "state":
		return chain.Encode(&protocol.StateResponse{Status: protocol.StatusBusy})
	}
	return chain.Encode(&protocol.ChunkResponse{Status: protocol.StatusBusy})
}

// encodeBlockResponse encodes resp, dropping blocks from its end until the
// encoding fits in limit bytes (one block always fits: limit is above
// chain.MaxEncodedBlockSize). A cut response has status succeeded.
func encodeBlockResponse(resp *protocol.BlockResponse, limit int) ([]byte, error) {
	for {
		body, err := chain.Encode(resp)
		if err != nil || len(body) <= limit || len(resp.Blocks) <= 1 {
			return body, err
		}
		resp = &protocol.BlockResponse{Status: protocol.StatusSucceeded, Blocks: resp.Blocks[:len(resp.Blocks)/2]}
	}
}

// encodeCommittedResponse encodes resp as encodeBlockResponse does,
// dropping blocks from its end until it fits in limit bytes.
func encodeCommittedResponse(resp *protocol.CommittedResponse, limit int) ([]byte, error) {
	for {
		body, err := chain.Encode(resp)
		if err != nil || len(body) <= limit || len(resp.Blocks) <= 1 {
			return body, err
		}
		resp = &protocol.CommittedResponse{Status: protocol.StatusSucceeded, Blocks: resp.Blocks[:len(resp.Blocks)/2]}
	}
}

// rateLimiter is a token bucket per peer. It forgets peers whose bucket is
// full again, so it holds at most the peers active in the last burst/rate
// seconds. It is safe for concurrent use.
type rateLimiter struct {
	rate  float64
	burst float64
	mu    sync.Mutex
	peers map[peer.ID]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(rate float64, burst int) *rateLimiter {
	return &rateLimiter{rate: rate, burst: float64(burst), peers: make(map[peer.ID]*bucket)}
}

// allow takes a token from p's bucket and reports whether there was one.
func (r *rateLimiter) allow(p peer.ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.refill(p, time.Now())
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// ready reports whether p's bucket holds a positive balance, without taking
// from it: the byte bucket lets a response through while it is not in debt,
// then takes its size (see take), since a response's size is known only
// once it is built.
func (r *rateLimiter) ready(p peer.ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refill(p, time.Now()).tokens > 0
}

// take takes n from p's bucket, which may go into debt down to -burst; p is
// refused until the rate has paid it back.
func (r *rateLimiter) take(p peer.ID, n float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.refill(p, time.Now())
	b.tokens = max(-r.burst, b.tokens-n)
}

// refill returns p's bucket, created full, refilled up to now.
func (r *rateLimiter) refill(p peer.ID, now time.Time) *bucket {
	b, ok := r.peers[p]
	if !ok {
		if len(r.peers) >= 4096 {
			r.sweep(now)
		}
		b = &bucket{tokens: r.burst, last: now}
		r.peers[p] = b
	}
	b.tokens = min(r.burst, b.tokens+now.Sub(b.last).Seconds()*r.rate)
	b.last = now
	return b
}

// sweep forgets the peers whose buckets have refilled.
func (r *rateLimiter) sweep(now time.Time) {
	for p, b := range r.peers {
		if b.tokens+now.Sub(b.last).Seconds()*r.rate >= r.burst {
			delete(r.peers, p)
		}
	}
}
