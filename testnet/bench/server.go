package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/protocol"
)

// Timeouts of the serving side, as the node's defaults.
const (
	requestTimeout  = 5 * time.Second
	responseTimeout = 30 * time.Second
)

// newHost returns a libp2p host with the node's transport stack (TCP,
// Noise, yamux) listening on a loopback port.
func newHost(key crypto.PrivKey) (host.Host, error) {
	h, err := libp2p.New(
		libp2p.Identity(key),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.DisableRelay(),
		libp2p.UserAgent("p2pnode-bench"),
	)
	if err != nil {
		return nil, fmt.Errorf("bench: libp2p host: %w", err)
	}
	return h, nil
}

// servers are the serving hosts of a run. Each answers the block and
// committed-range protocols from the chain file, in state-sync mode the
// chunk protocol from the chunk file and in snapshot mode the state
// protocol from the snapshot file, waiting the configured latency before
// every response.
type servers struct {
	hosts   []host.Host
	chain   *chainFile
	chunks  *chunkFile    // nil but in state-sync mode
	snap    *snapshotFile // nil but in snapshot mode
	latency time.Duration
	link    *linkNet      // nil: loopback TCP
	done    chan struct{} // closed by Close: cuts the latency waits short
	misses  atomic.Int64  // chunk or state requests the chunk or snapshot file could not answer

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup // the handlers running
}

// startServers starts n serving hosts on loopback, or on the link model
// if cfg has one; the first ones take the
// validators' keys, so that they are the signers a retrieval asks.
func startServers(cfg *Config, c *chainFile, chunks *chunkFile, snap *snapshotFile) (*servers, error) {
	s := &servers{chain: c, chunks: chunks, snap: snap, latency: cfg.Latency, done: make(chan struct{})}
	if !cfg.Link.IsZero() {
		s.link = newLinkNet(cfg.Link)
	}
	chainID := c.v.Genesis.ChainID
	for i := range cfg.Peers {
		key := serverKey(cfg, c, i)
		h, err := s.newHost(key)
		if err != nil {
			s.Close()
			return nil, err
		}
		h.SetStreamHandler(protocol.BlocksID(chainID), s.handleBlocks)
		if c.roundsAreHeights() {
			h.SetStreamHandler(protocol.CommittedID(chainID), s.handleCommitted)
		}
		if chunks != nil {
			h.SetStreamHandler(protocol.ChunksID(chainID), s.handleChunks)
		}
		if snap != nil {
			h.SetStreamHandler(protocol.StateID(chainID), s.handleState)
		}
		s.hosts = append(s.hosts, h)
	}
	return s, nil
}

// newHost returns a host for the run: on the link model if there is one,
// else on loopback TCP.
func (s *servers) newHost(key crypto.PrivKey) (host.Host, error) {
	if s.link != nil {
		return s.link.newHost(key)
	}
	return newHost(key)
}

// serverKey returns the key of server i: validator i's, or a key of its
// own past the validators.
func serverKey(cfg *Config, c *chainFile, i int) crypto.PrivKey {
	if i < len(c.v.Keys) {
		return c.v.Keys[i]
	}
	return chaintest.Key(cfg.Seed+0x5e7e, i)
}

// AddrInfos returns the servers' addresses.
func (s *servers) AddrInfos() []peer.AddrInfo {
	out := make([]peer.AddrInfo, len(s.hosts))
	for i, h := range s.hosts {
		out[i] = peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
	}
	return out
}

// enter registers a handler; false once the servers are closing.
func (s *servers) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// Close stops the servers and waits for their handlers.
func (s *servers) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	close(s.done)
	for _, h := range s.hosts {
		_ = h.Close()
	}
	s.wg.Wait()
	if s.link != nil {
		s.link.Close()
	}
}

func (s *servers) handleBlocks(st network.Stream) {
	if !s.enter() {
		_ = st.Reset()
		return
	}
	defer s.wg.Done()
	var req protocol.BlockRequest
	if !readRequest(st, protocol.MaxBlockRequestSize, &req) {
		return
	}
	frame, err := s.chain.blockResponse(&req, protocol.MaxBlockResponseSize-16)
	if err != nil {
		_ = st.Reset()
		return
	}
	s.respond(st, frame)
}

func (s *servers) handleCommitted(st network.Stream) {
	if !s.enter() {
		_ = st.Reset()
		return
	}
	defer s.wg.Done()
	var req protocol.CommittedRequest
	if !readRequest(st, protocol.MaxCommittedRequestSize, &req) {
		return
	}
	frame, err := s.chain.committedResponse(&req, protocol.MaxCommittedResponseSize-16)
	if err != nil {
		_ = st.Reset()
		return
	}
	s.respond(st, frame)
}

func (s *servers) handleChunks(st network.Stream) {
	serveFile(s, st, protocol.MaxChunkRequestSize, s.chunks.response)
}

func (s *servers) handleState(st network.Stream) {
	serveFile(s, st, protocol.MaxStateRequestSize, s.snap.response)
}

// serveFile answers one request read from st with the frame respond
// finds in a precomputed file, counting a miss when it has none.
func serveFile[R any](s *servers, st network.Stream, limit int, respond func(*R) ([]byte, bool, error)) {
	if !s.enter() {
		_ = st.Reset()
		return
	}
	defer s.wg.Done()
	var req R
	if !readRequest(st, limit, &req) {
		return
	}
	frame, ok, err := respond(&req)
	if err != nil {
		_ = st.Reset()
		return
	}
	if !ok {
		s.misses.Add(1)
	}
	s.respond(st, frame)
}

// readRequest reads one request frame into req before the request
// timeout; on failure it resets st.
func readRequest(st network.Stream, limit int, req any) bool {
	if err := st.SetReadDeadline(time.Now().Add(requestTimeout)); err != nil {
		_ = st.Reset()
		return false
	}
	if err := protocol.ReadMsg(st, limit, req); err != nil {
		_ = st.Reset()
		return false
	}
	return true
}

// respond waits the latency, then writes frame, a length-prefixed response,
// and closes st.
func (s *servers) respond(st network.Stream, frame []byte) {
	if s.latency > 0 {
		t := time.NewTimer(s.latency)
		select {
		case <-t.C:
		case <-s.done:
			t.Stop()
			_ = st.Reset()
			return
		}
	}
	if err := st.SetWriteDeadline(time.Now().Add(responseTimeout)); err != nil {
		_ = st.Reset()
		return
	}
	if _, err := st.Write(frame); err != nil {
		_ = st.Reset()
		return
	}
	_ = st.Close()
}

// blockResponse returns the framed encoding of the protocol.BlockResponse
// that syncer.ServeBlocks gives for req from a store holding the chain:
// req.BlockID and its ancestors, newest first, until req.Count blocks, the
// target, the genesis, or maxBytes of blocks (at least one block). The
// blocks' encodings are copied from the file as they are: the encoding of
// a response is its header followed by its blocks' canonical encodings.
func (c *chainFile) blockResponse(req *protocol.BlockRequest, maxBytes int) ([]byte, error) {
	if err := req.Validate(); err != nil {
		return frameOf(protocol.StatusBadRequest, nil, 0), nil
	}
	h, ok := c.byID[req.BlockID]
	if !ok && req.BlockID == c.v.Genesis.Block().ID {
		h, ok = 0, true
	}
	if !ok {
		return frameOf(protocol.StatusIDNotFound, nil, 0), nil
	}
	status := protocol.StatusSucceeded
	var heights []int
	size := 0
	for {
		n := c.size0(h)
		if len(heights) > 0 && size+n > maxBytes {
			break
		}
		heights = append(heights, h)
		size += n
		if len(heights) == int(req.Count) {
			break
		}
		if h == 0 {
			status = protocol.StatusNotEnoughBlocks
			break
		}
		if !req.Target.IsZero() && c.id0(h-1) == req.Target {
			status = protocol.StatusSucceededWithTarget
			break
		}
		h--
	}
	frame := frameOf(status, heights, size)
	if err := c.readHeights(frame[len(frame)-size:], heights); err != nil {
		return nil, err
	}
	return frame, nil
}

// roundsAreHeights reports whether block h is of round h, as in a chain
// built in consecutive rounds: then the heights are the round index the
// committed-range protocol needs.
func (c *chainFile) roundsAreHeights() bool {
	return c.meta.LastQC.CertifiedBlock().Round == uint64(c.Len())
}

// committedResponse returns the framed encoding of the
// protocol.CommittedResponse that syncer.ServeCommitted gives for req from
// a node that committed the chain up to CommittedInfo: the blocks of
// rounds [req.FromRound, req.ToRound), oldest first, until req.MaxBlocks
// blocks or maxBytes (at least one block). Rounds are heights (see
// roundsAreHeights).
func (c *chainFile) committedResponse(req *protocol.CommittedRequest, maxBytes int) ([]byte, error) {
	if err := req.Validate(); err != nil {
		return frameOf(protocol.StatusBadRequest, nil, 0), nil
	}
	top := c.CommittedInfo().Round
	status := protocol.StatusSucceeded
	if top < req.ToRound-1 {
		status = protocol.StatusNotEnoughBlocks
	}
	var heights []int
	size := 0
	for r := max(req.FromRound, 1); r < req.ToRound && r <= top && len(heights) < int(req.MaxBlocks); r++ {
		h := int(r)
		n := c.size(h)
		if len(heights) > 0 && size+n > maxBytes {
			status = protocol.StatusSucceeded
			break
		}
		heights = append(heights, h)
		size += n
	}
	frame := frameOf(status, heights, size)
	if err := c.readHeights(frame[len(frame)-size:], heights); err != nil {
		return nil, err
	}
	return frame, nil
}

// frameOf returns a frame holding the header of a block response of
// status with len(heights) blocks, followed by size bytes left for the
// blocks.
func frameOf(status protocol.Status, heights []int, size int) []byte {
	hdr := make([]byte, 0, 16)
	hdr = append(hdr, 0x82, byte(status)) // array(2), status (< 24)
	hdr = appendArrayHeader(hdr, len(heights))
	body := len(hdr) + size
	frame := make([]byte, 0, binary.MaxVarintLen64+body)
	frame = binary.AppendUvarint(frame, uint64(body))
	frame = append(frame, hdr...)
	return frame[:len(frame)+size]
}

// appendArrayHeader appends the CBOR header of an array of n elements.
func appendArrayHeader(b []byte, n int) []byte {
	switch {
	case n < 24:
		return append(b, 0x80|byte(n))
	case n < 1<<8:
		return append(b, 0x98, byte(n))
	case n < 1<<16:
		return append(b, 0x99, byte(n>>8), byte(n))
	default:
		return append(b, 0x9a, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// id0 and size0 address the blocks by height, genesis (0) included.
func (c *chainFile) id0(h int) chain.Hash {
	if h == 0 {
		return c.v.Genesis.Block().ID
	}
	return c.ids[h-1]
}

func (c *chainFile) size0(h int) int {
	if h == 0 {
		return len(c.genesis)
	}
	return c.size(h)
}

// readHeights reads the encodings of the blocks heights, one after the
// other, into dst. Heights are consecutive in a response (rising for a
// committed range, falling for a walk back), so that each response costs
// one pread, as a batch of the ceiling does: a read per block would spend
// more in system calls than the node it serves spends decoding.
func (c *chainFile) readHeights(dst []byte, heights []int) error {
	for len(heights) > 0 {
		h := heights[0]
		if h == 0 {
			copy(dst, c.genesis)
			dst, heights = dst[len(c.genesis):], heights[1:]
			continue
		}
		n := 1 // the run of consecutive heights from h, up or down
		step := 0
		if len(heights) > 1 && heights[1] != 0 && (heights[1] == h+1 || heights[1] == h-1) {
			step = heights[1] - h
			for n < len(heights) && heights[n] != 0 && heights[n] == h+n*step {
				n++
			}
		}
		lo, hi := h, h+(n-1)*step
		if step < 0 {
			lo, hi = hi, lo
		}
		size := int(c.Bytes(lo, hi))
		if step >= 0 {
			if _, err := c.f.ReadAt(dst[:size], c.offs[lo-1]); err != nil {
				return fmt.Errorf("bench: read blocks %d to %d: %w", lo, hi, err)
			}
		} else {
			buf, err := c.readRange(lo, hi)
			if err != nil {
				return err
			}
			at := 0
			for i := hi; i >= lo; i-- { // newest first
				at += copy(dst[at:], buf[c.offs[i-1]-c.offs[lo-1]:c.offs[i]-c.offs[lo-1]])
			}
		}
		dst, heights = dst[size:], heights[n:]
	}
	return nil
}

// connect connects h to every server.
func connect(ctx context.Context, h host.Host, peers []peer.AddrInfo) error {
	for _, p := range peers {
		if err := h.Connect(ctx, p); err != nil {
			return fmt.Errorf("bench: connect to %s: %w", p.ID, err)
		}
	}
	return nil
}
