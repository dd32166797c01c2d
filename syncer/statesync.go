package syncer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/protocol"
)

// StateComputer is the part of the ledger state sync drives.
// *ledger.Ledger implements it.
type StateComputer interface {
	// Version returns the number of durable transactions.
	Version() uint64
	// ApplyChunk verifies c against target and appends it durably.
	ApplyChunk(c *ledger.Chunk, target *chain.LedgerInfoWithSignatures) error
	// FastForward commits target when the ledger already holds all of its
	// transactions.
	FastForward(target *chain.LedgerInfoWithSignatures) error
}

// stateSync is one run of state sync: it fetches the transactions of
// versions [ledger version, target version) in chunks from several peers at
// once, verifies each chunk's proof against the target ledger info as it
// arrives, and applies the chunks strictly in order. At most
// Config.ChunksInFlight chunks are requested or waiting to be applied at any
// time, so memory stays bounded whatever the gap. Applied chunks are durable:
// a run that fails or is cancelled is resumed by the next one from the
// ledger's version.
type stateSync struct {
	ledgerSync
}

// ledgerSync is what a fast-forward's two ways to the target ledger info,
// state sync and snapshot sync, work with: the network, the peers'
// scores and delivery rates, and the candidate peers.
type ledgerSync struct {
	net    Network
	scores *Scores
	flows  *flows
	cfg    Config
	log    *slog.Logger

	target *chain.LedgerInfoWithSignatures
	peers  []peer.ID // candidates, best first
	banned *peerSet
}

// chunkRange is a range of versions [start, end) that one request covers.
type chunkRange struct {
	start, end uint64
	chunk      *ledger.Chunk // verified, waiting to be applied
	inFlight   bool
	tried      map[peer.ID]bool // in the current round of attempts
	rounds     int              // rounds in which every peer failed
	retryAt    time.Time        // start of the next round
}

// maxRangeRounds is how many times every peer may fail one range before
// the state sync gives up (the next sync resumes from the ledger).
const maxRangeRounds = 6

// retryPause is the pause before round k+1 of attempts at a range:
// 100 ms, doubling, at most 2 s (about 5 s before giving up).
func retryPause(k int) time.Duration {
	return min(100*time.Millisecond<<(k-1), 2*time.Second)
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// rotation hands out the candidate peers of a run in turn. A peer that
// timed out maxTimeouts times in the run is asked again only when no
// other is left, so a silent peer costs at most two timeouts instead of
// one per request.
type rotation struct {
	peers    []peer.ID // best first
	banned   *peerSet
	turn     int
	timeouts map[peer.ID]int
}

const maxTimeouts = 2

func newRotation(peers []peer.ID, banned *peerSet) *rotation {
	return &rotation{peers: peers, banned: banned, timeouts: map[peer.ID]int{}}
}

// next returns the next candidate neither in tried nor banned and adds it
// to tried; false when none is left.
func (r *rotation) next(tried map[peer.ID]bool) (peer.ID, bool) {
	for i := range 2 * len(r.peers) {
		p := r.peers[(r.turn+i)%len(r.peers)]
		if tried[p] || r.banned.has(p) || (i < len(r.peers) && r.timeouts[p] >= maxTimeouts) {
			continue
		}
		r.turn = (r.turn + i + 1) % len(r.peers)
		tried[p] = true
		return p, true
	}
	return "", false
}

// anyUnbanned reports whether a peer not proven faulty is left.
func (r *rotation) anyUnbanned() bool {
	return slices.ContainsFunc(r.peers, func(p peer.ID) bool { return !r.banned.has(p) })
}

type chunkResult struct {
	start   uint64
	peer    peer.ID
	resp    *protocol.ChunkResponse
	err     error
	latency time.Duration
	slow    bool // timed out while the peer delivered other answers
}

// chunkBytes estimates the encoded bytes of c.
func chunkBytes(c *ledger.Chunk) int {
	n := 64 + 34*(len(c.Left)+len(c.Right))
	for _, tx := range c.Txs {
		n += len(tx) + 3
	}
	return n
}

// run syncs sc to s.target. It returns nil once sc holds the target.
func (s *stateSync) run(ctx context.Context, sc StateComputer) error {
	info := s.target.LedgerInfo.CommitInfo
	start := sc.Version()
	if start > info.Version {
		return fmt.Errorf("syncer: ledger at version %d is past the target %d", start, info.Version)
	}
	if start == info.Version {
		return sc.FastForward(s.target)
	}
	if len(s.peers) == 0 {
		return fmt.Errorf("%w: no peer to state-sync from", ErrAllPeersFailed)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	total := info.Version - start
	began := time.Now()
	ticker := time.NewTicker(s.cfg.ProgressInterval)
	defer ticker.Stop()
	wakeTimer := time.NewTimer(time.Hour) // for ranges waiting to be retried
	wakeTimer.Stop()
	defer wakeTimer.Stop()

	ranges := map[uint64]*chunkRange{} // by start
	next := start                      // first version not yet in ranges
	applied := start
	inFlight := 0
	results := make(chan chunkResult, s.cfg.ChunksInFlight)

	defer func() {
		// Wait for the requests in flight: nothing may outlive the run.
		cancel()
		for ; inFlight > 0; inFlight-- {
			<-results
		}
	}()

	rot := newRotation(s.peers, s.banned)
	perTx := 0.0 // moving average of a transaction's bytes in the chunks so far
	launch := func(r *chunkRange) bool {
		p, ok := rot.next(r.tried)
		if !ok {
			return false
		}
		r.inFlight = true
		inFlight++
		req := protocol.ChunkRequest{StartVersion: r.start, TargetVersion: info.Version, MaxTxs: uint32(r.end - r.start)}
		// With AdaptiveFlow the timeout adds to ChunkTimeout the time
		// the chunk's bytes take at p's measured rate (see flows).
		expected, sharing := 0, 0
		if s.cfg.AdaptiveFlow {
			expected = protocol.MaxChunkResponseSize
			if perTx > 0 {
				expected = min(int(perTx*float64(req.MaxTxs))+4096, expected)
			}
			sharing = expected * s.cfg.ChunksInFlight
		}
		fr := s.flows.start(p, expected, sharing, s.cfg.ChunkTimeout, time.Now())
		go func() {
			rctx, rcancel := context.WithTimeout(ctx, fr.timeout)
			defer rcancel()
			t0 := time.Now()
			resp, err := s.net.RequestChunk(rctx, p, req)
			res := chunkResult{start: req.StartVersion, peer: p, resp: resp, err: err, latency: time.Since(t0)}
			got := 0
			if resp != nil && resp.Chunk != nil {
				got = chunkBytes(resp.Chunk)
			}
			res.slow = s.flows.done(fr, flowEndOf(ctx, err), got, 0, time.Now())
			results <- res
		}()
		return true
	}

	for applied < info.Version {
		// Plan new ranges while the window has room.
		for len(ranges) < s.cfg.ChunksInFlight && next < info.Version {
			end := min(next+uint64(s.cfg.ChunkTxs), info.Version)
			ranges[next] = &chunkRange{start: next, end: end, tried: map[peer.ID]bool{}}
			next = end
		}
		// Request every range that is neither in flight nor fetched. A
		// range every peer failed to serve is tried on all of them again
		// after a pause: peers that are behind the target catch up, and
		// busy ones recover, within a few rounds.
		now := time.Now()
		var wake time.Time
		for v := applied; v < next; v = ranges[v].end {
			r := ranges[v]
			if r.chunk != nil || r.inFlight {
				continue
			}
			if now.Before(r.retryAt) {
				wake = earliest(wake, r.retryAt)
				continue
			}
			if launch(r) {
				continue
			}
			r.rounds++
			if r.rounds >= maxRangeRounds || !rot.anyUnbanned() {
				return fmt.Errorf("%w: chunk of versions [%d, %d) from %d peers, %d rounds",
					ErrAllPeersFailed, r.start, r.end, len(s.peers), r.rounds)
			}
			clear(r.tried)
			r.retryAt = now.Add(retryPause(r.rounds))
			wake = earliest(wake, r.retryAt)
		}
		var wakeC <-chan time.Time
		if !wake.IsZero() {
			wakeTimer.Reset(time.Until(wake))
			wakeC = wakeTimer.C
		}
		select {
		case <-wakeC:
		case res := <-results:
			inFlight--
			r := ranges[res.start]
			r.inFlight = false
			chunk, outcome, err := s.check(res, r)
			switch {
			case outcome == OutcomeTimeout && res.slow && s.cfg.AdaptiveFlow:
				s.scores.NoteSlow(res.peer, res.latency) // slow, not faulty
			case outcome == OutcomeTimeout:
				s.scores.Record(res.peer, outcome, res.latency)
				rot.timeouts[res.peer]++
			default:
				s.scores.Record(res.peer, outcome, res.latency)
			}
			if chunk != nil && len(chunk.Txs) > 0 {
				if per := float64(chunkBytes(chunk)) / float64(len(chunk.Txs)); perTx == 0 {
					perTx = per
				} else {
					perTx = (3*perTx + per) / 4
				}
			}
			if err != nil {
				if outcome == OutcomeInvalid {
					s.banned.add(res.peer)
					s.log.Warn("peer sent an invalid chunk", "peer", res.peer, "start_version", r.start, "err", err)
				} else {
					s.log.Debug("chunk request failed", "peer", res.peer, "start_version", r.start, "outcome", outcome, "err", err)
				}
				continue
			}
			if chunk.End() < r.end { // a short answer: the rest becomes a range of its own
				ranges[chunk.End()] = &chunkRange{start: chunk.End(), end: r.end, tried: map[peer.ID]bool{}}
				r.end = chunk.End()
			}
			r.chunk = chunk
			// Apply every fetched range that is next in line.
			for r := ranges[applied]; r != nil && r.chunk != nil; r = ranges[applied] {
				if err := sc.ApplyChunk(r.chunk, s.target); err != nil {
					return fmt.Errorf("syncer: apply chunk at version %d: %w", r.start, err)
				}
				delete(ranges, r.start)
				applied = r.end
			}
		case <-ticker.C:
			done := applied - start
			rate := float64(done) / time.Since(began).Seconds()
			var eta time.Duration
			if rate > 0 {
				eta = time.Duration(float64(total-done) / rate * float64(time.Second))
			}
			s.log.Info("state sync progress", "done", done, "total", total, "version", applied,
				"target_version", info.Version, "tx_per_s", int64(rate), "eta", eta.Round(time.Second))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// check verifies a chunk response for range r on its own: its proof must
// place its transactions at r.start in the target's accumulator (using the
// chunk's own left frontier, which ApplyChunk later compares with the
// ledger's). Verifying on arrival lets chunks be checked out of order and in
// parallel with fetching.
func (s *stateSync) check(res chunkResult, r *chunkRange) (*ledger.Chunk, Outcome, error) {
	switch {
	case res.err == nil:
	case errors.Is(res.err, ErrMisbehaved):
		return nil, OutcomeInvalid, res.err
	default:
		return nil, OutcomeTimeout, res.err
	}
	switch res.resp.Status {
	case protocol.StatusSucceeded:
	case protocol.StatusNotEnoughBlocks, protocol.StatusBusy, protocol.StatusIDNotFound, protocol.StatusPruned:
		return nil, OutcomeUnavailable, fmt.Errorf("%w: %s", ErrUnavailable, res.resp.Status)
	default:
		return nil, OutcomeInvalid, fmt.Errorf("%w: status %s", ErrMisbehaved, res.resp.Status)
	}
	c := res.resp.Chunk
	if c == nil {
		return nil, OutcomeInvalid, fmt.Errorf("%w: success without a chunk", ErrMisbehaved)
	}
	if c.StartVersion != r.start || c.End() > r.end {
		return nil, OutcomeInvalid, fmt.Errorf("%w: chunk [%d, %d) for a request of [%d, %d)", ErrMisbehaved, c.StartVersion, c.End(), r.start, r.end)
	}
	if err := ledger.VerifyChunk(c, c.Left, c.StartVersion, s.target.LedgerInfo.CommitInfo); err != nil {
		return nil, OutcomeInvalid, fmt.Errorf("%w: %w", ErrMisbehaved, err)
	}
	return c, OutcomeValid, nil
}
