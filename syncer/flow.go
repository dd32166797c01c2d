package syncer

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
)

// Flow control per peer. Each completed request measures the peer's
// delivery rate (bytes of blocks received per second while requests to it
// were in flight); a request's timeout is then sized to the bytes it
// expects and the bytes already asked of that peer, at that rate, so that a
// slow honest peer serving large responses is not timed out, while a peer
// that delivers nothing still is. The requests a forward fetch keeps in
// flight at one peer follow AIMD: one more after each answer that found
// the window full, half as many after a timeout.

// Flow constants.
const (
	// initialPeerWindow is a new peer's window, in requests.
	initialPeerWindow = 2
	// timeoutSafety multiplies the expected transfer time of a request.
	timeoutSafety = 2
	// minMeasuredRate floors a measured rate (bytes/s), so that a
	// timeout stays finite.
	minMeasuredRate = 16 << 10
	// blockOverhead estimates the encoded bytes of a block beyond its
	// transactions: header, QC and signatures, framing.
	blockOverhead = 512
	// rateHorizon is about how far back a peer's rate looks.
	rateHorizon = 10 * time.Second
	// maxFlowPeers bounds the table; idle peers are dropped first.
	maxFlowPeers = 4096
)

// flows is the flow state of every peer. It is safe for concurrent use.
type flows struct {
	initialRate float64 // assumed for a peer not measured yet, bytes/s
	maxWindow   int
	maxTimeout  time.Duration

	mu         sync.Mutex
	peers      map[peer.ID]*peerFlow
	all        peerFlow // every peer together: the local link
	blockBytes float64  // moving average of a block's bytes; 0: none seen
}

type peerFlow struct {
	rate          float64 // moving average, bytes/s; 0: not measured
	window        float64 // requests allowed in flight (forward fetch)
	threshold     float64 // below it the window grows by one per answer
	inFlight      int
	bytesInFlight int
	lastDelivery  time.Time // when the last answer arrived
	busyStart     time.Time // start of the present busy period (requests in flight)
	busyBytes     float64   // delivered since busyStart
	timeouts      uint64    // timeouts that found the peer delivering (slow)
	stalls        uint64    // timeouts with nothing delivered meanwhile
}

func newFlows(cfg Config) *flows {
	return &flows{
		initialRate: float64(cfg.InitialPeerThroughput),
		maxWindow:   cfg.MaxPeerRequests,
		maxTimeout:  cfg.MaxResponseTimeout,
		peers:       make(map[peer.ID]*peerFlow),
	}
}

func (f *flows) peerLocked(p peer.ID) *peerFlow {
	pf, ok := f.peers[p]
	if !ok {
		if len(f.peers) >= maxFlowPeers {
			for q, qf := range f.peers {
				if qf.inFlight == 0 {
					delete(f.peers, q)
					break
				}
			}
		}
		pf = &peerFlow{window: initialPeerWindow, threshold: float64(f.maxWindow)}
		f.peers[p] = pf
	}
	return pf
}

// expectBlocks returns the bytes n blocks are expected to take: n times
// the average block seen so far, or, before any, what a response may carry
// at most (limit).
func (f *flows) expectBlocks(n, limit int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.blockBytes == 0 {
		return min(n*chain.MaxEncodedBlockSize, limit)
	}
	return min(int(float64(n)*f.blockBytes), limit)
}

// blockSize returns the average bytes of a block seen so far, 0 before any.
func (f *flows) blockSize() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return int(f.blockBytes)
}

// transfer returns how long p takes to deliver n bytes at its measured
// rate, 0 if p was not measured yet.
func (f *flows) transfer(p peer.ID, n int) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	pf, ok := f.peers[p]
	if !ok || pf.rate <= 0 {
		return 0
	}
	return time.Duration(float64(n) / pf.rate * float64(time.Second))
}

// flowRequest is a request in flight, from [flows.start].
type flowRequest struct {
	p        peer.ID
	expected int
	began    time.Time
	timeout  time.Duration
}

// start registers a request to p expected to bring expected bytes, and
// returns it with its timeout: base (an allowance for the round trip and
// the server) plus timeoutSafety times the longer of two transfer times,
// the bytes in flight to p at p's rate and the bytes in flight to every
// peer at the rate of all together (answers share the local link too), at
// most maxTimeout and never below base. The bytes in flight count this
// request's, and are at least sharing: what the caller is about to ask
// alongside it.
func (f *flows) start(p peer.ID, expected, sharing int, base time.Duration, now time.Time) flowRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	pf := f.peerLocked(p)
	transfer := time.Duration(0)
	for _, q := range []*peerFlow{pf, &f.all} {
		if q.inFlight == 0 {
			q.busyStart, q.busyBytes = now, 0
		}
		q.inFlight++
		q.bytesInFlight += expected
		rate := q.rate
		if rate == 0 {
			rate = f.initialRate
		}
		inFlight := q.bytesInFlight
		if q == &f.all {
			inFlight = max(inFlight, sharing)
		}
		transfer = max(transfer, time.Duration(timeoutSafety*float64(inFlight)/rate*float64(time.Second)))
	}
	t := max(base, min(base+transfer, f.maxTimeout))
	return flowRequest{p: p, expected: expected, began: now, timeout: t}
}

// flowEnd is how a request ended, for [flows.done].
type flowEnd uint8

const (
	// flowCancelled: cancelled by the caller; measures nothing.
	flowCancelled flowEnd = iota
	// flowDelivered: an answer arrived (valid or not, it took the link).
	flowDelivered
	// flowTimedOut: no answer in time, or the stream failed.
	flowTimedOut
)

// done ends r: got bytes of blocks arrived (flowDelivered), nothing did
// in time (flowTimedOut) or the request was cancelled. It returns, for a
// timeout, whether p is slow (or the local link congested) rather than
// stalled: p delivered another answer while r was in flight, or other peers
// did and p had answered within a timeout before r began. The caller must
// not treat a slow peer as faulty.
func (f *flows) done(r flowRequest, end flowEnd, got, blocks int, now time.Time) (slow bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pf := f.peerLocked(r.p)
	full := float64(pf.inFlight) >= pf.window
	for _, q := range []*peerFlow{pf, &f.all} {
		q.inFlight--
		q.bytesInFlight -= r.expected
		if end == flowDelivered {
			q.deliver(got, now)
		}
	}
	switch end {
	case flowDelivered:
		if blocks > 0 {
			per := float64(got) / float64(blocks)
			if f.blockBytes == 0 {
				f.blockBytes = per
			} else {
				f.blockBytes = (7*f.blockBytes + per) / 8
			}
		}
		if full {
			if pf.window < pf.threshold {
				pf.window++ // slow start
			} else {
				pf.window += 1 / pf.window
			}
			pf.window = min(pf.window, float64(f.maxWindow))
		}
	case flowTimedOut:
		// Slow, not stalled: p delivered an answer while r was out; or
		// the local link did, and p had answered shortly before r (its
		// answers queue behind the others' on the local link).
		slow = pf.lastDelivery.After(r.began) ||
			(f.all.lastDelivery.After(r.began) && !pf.lastDelivery.IsZero() && r.began.Sub(pf.lastDelivery) < r.timeout)
		if slow {
			pf.timeouts++
		} else {
			pf.stalls++
		}
		pf.window = max(1, pf.window/2)
		pf.threshold = max(1, pf.window)
		if !slow && pf.rate > 0 {
			pf.rate = max(pf.rate/2, minMeasuredRate)
		}
	}
	return slow
}

// deliver takes note of got bytes delivered at now. The rate is the bytes
// delivered over the time requests were in flight: answers to concurrent
// requests share the links and may all arrive at once, so one answer's
// bytes over its own latency would say little. Past rateHorizon the
// period's older half is forgotten, so that the rate follows changes.
func (q *peerFlow) deliver(got int, now time.Time) {
	q.lastDelivery = now
	q.busyBytes += float64(got)
	if d := now.Sub(q.busyStart); d > 0 && got > 0 {
		q.rate = max(q.busyBytes/d.Seconds(), minMeasuredRate)
		if d > rateHorizon {
			q.busyBytes /= 2
			q.busyStart = now.Add(-d / 2)
		}
	}
}

// spare returns how many more requests p's window allows, and p's load.
func (f *flows) spare(p peer.ID) (spare, load int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pf := f.peerLocked(p)
	return max(0, int(pf.window)-pf.inFlight), pf.inFlight
}

// PeerFlow is a snapshot of a peer's flow control.
type PeerFlow struct {
	// Rate is the measured delivery rate in bytes/s (0: not measured).
	Rate float64
	// Window is how many requests a forward fetch may keep in flight at
	// the peer.
	Window float64
	// SlowTimeouts counts timeouts while the peer was delivering other
	// answers (not penalised); Stalls timeouts with nothing delivered.
	SlowTimeouts, Stalls uint64
}

// Flow returns p's flow state.
func (m *Manager) Flow(p peer.ID) PeerFlow {
	f := m.retriever.flows
	f.mu.Lock()
	defer f.mu.Unlock()
	pf, ok := f.peers[p]
	if !ok {
		return PeerFlow{Window: initialPeerWindow}
	}
	return PeerFlow{Rate: pf.rate, Window: pf.window, SlowTimeouts: pf.timeouts, Stalls: pf.stalls}
}

// blocksBytes estimates the encoded bytes of blocks.
func blocksBytes(blocks []*chain.Block) int {
	n := 0
	for _, b := range blocks {
		if b != nil {
			n += b.PayloadSize() + len(b.Payload())*2 + blockOverhead
		}
	}
	return n
}
