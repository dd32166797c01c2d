package syncer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/chain/statetree"
	"github.com/p2pnode/p2pnode/protocol"
)

// snapshotSync is one run of snapshot sync: it restores the state of the
// target's version into a ledger at genesis from state chunks, each
// verified against the target's state_root and the chunks before it, and
// stored with the restore's position before the next is applied, so that
// a run that fails or is killed resumes after the last chunk stored.
//
// Chunks follow one another (each starts after the last leaf of the one
// before), so they are fetched one after the other, but the request for
// the next goes out as soon as a chunk arrives, before it is verified and
// stored: the server prepares chunk k+1 while the client verifies chunk
// k. A chunk that fails verification bans its sender and drops the
// request that followed it. Memory is two chunks whatever the state's size.
type snapshotSync struct {
	ledgerSync

	rot      *rotation
	perLeaf  float64 // moving average of a leaf's bytes
	progress func()  // logs the restore's progress
	ticker   *time.Ticker
	began    bool // a restore of the target was stored or resumed
}

// stateResult is the answer to one state request.
type stateResult struct {
	req     protocol.StateRequest
	peer    peer.ID
	resp    *protocol.StateResponse
	err     error
	latency time.Duration
	slow    bool
}

// stateFetch is the fetch of the chunk at start: one request in flight at
// a time, to the candidates in turn.
type stateFetch struct {
	req    protocol.StateRequest
	tried  map[peer.ID]bool // in the current round of attempts
	rounds int              // rounds in which every candidate failed
	done   chan stateResult
	cancel context.CancelFunc
}

// Internal outcomes of a fetch's attempt.
var (
	errNoPeer = errors.New("every peer failed") // the fetch gives up
	errRetry  = errors.New("pause over")        // the next round may start
)

// run restores s.target's state into l and makes it l's committed state.
func (s *snapshotSync) run(ctx context.Context, l *ledger.Ledger) error {
	info := s.target.LedgerInfo.CommitInfo
	if len(s.peers) == 0 {
		return fmt.Errorf("%w: no peer to snapshot-sync from", ErrAllPeersFailed)
	}
	s.rot = newRotation(s.peers, s.banned)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.ticker = time.NewTicker(s.cfg.ProgressInterval)
	defer s.ticker.Stop()

	var first *stateResult // the answer that began the restore
	r, err := l.RestoreSnapshot(s.target, nil)
	switch {
	case err == nil:
		s.began = true
		s.log.Info("snapshot sync resumed", "version", info.Version, "leaves", r.Leaves())
	case errors.Is(err, ledger.ErrNoSnapshot):
		// A fresh restore begins with the frontier, which comes with the
		// first chunk.
		if r, first, err = s.begin(ctx, l); err != nil {
			return err
		}
		s.began = true
	default:
		return err
	}
	began, from := time.Now(), r.Leaves()
	s.progress = func() {
		s.log.Info("snapshot sync progress", "version", info.Version, "leaves", r.Leaves(),
			"leaves_per_s", int64(float64(r.Leaves()-from)/time.Since(began).Seconds()))
	}
	var pending *stateFetch // the request for the chunk after the one applied
	defer func() {
		if pending != nil {
			pending.cancel()
		}
	}()
	for {
		next, more := r.Next()
		if !more {
			break
		}
		var res stateResult
		var f *stateFetch
		switch {
		case first != nil && first.req.Start == next:
			res, first = *first, nil
		default:
			if pending == nil || pending.req.Start != next {
				if pending != nil {
					pending.cancel()
				}
				pending = s.launch(ctx, next, false)
			}
			f, pending = pending, nil
			if res, err = s.get(ctx, f); err != nil {
				return err
			}
		}
		chunk := res.resp.Chunk
		// Ask for the next chunk before verifying this one.
		if chunk != nil && len(chunk.Leaves) > 0 {
			if after, ok := successor(statetree.KeyHash(chunk.Leaves[len(chunk.Leaves)-1].Key)); ok {
				pending = s.launch(ctx, after, false)
			}
		}
		if err := s.apply(r, chunk); err != nil {
			var ve *chain.VerifyError
			if !errors.As(err, &ve) {
				return err
			}
			s.penalise(res.peer, err)
			if pending != nil {
				pending.cancel()
				pending = nil
			}
			continue // the next turn asks for next again, of another peer
		}
		s.scores.Record(res.peer, OutcomeValid, res.latency)
		s.notePerLeaf(chunk)
	}
	if err := r.Finish(); err != nil {
		return err
	}
	took := time.Since(began)
	s.log.Info("snapshot sync done", "version", info.Version, "leaves", r.Leaves(),
		"took", took.Round(time.Millisecond), "leaves_per_s", int64(float64(r.Leaves()-from)/max(took.Seconds(), 1e-9)))
	return nil
}

// begin fetches the first chunk of a fresh restore with the frontier and
// begins the restore with it, peer after peer until one sends a frontier
// that verifies. It returns the restore and the answer, whose chunk is
// still to apply.
func (s *snapshotSync) begin(ctx context.Context, l *ledger.Ledger) (*ledger.SnapshotRestore, *stateResult, error) {
	f := s.launch(ctx, chain.Hash{}, true)
	defer func() { f.cancel() }()
	for {
		res, err := s.get(ctx, f)
		if err != nil {
			return nil, nil, err
		}
		r, err := l.RestoreSnapshot(s.target, res.resp.Frontier)
		if err == nil {
			return r, &res, nil
		}
		var ve *chain.VerifyError
		if !errors.As(err, &ve) {
			return nil, nil, err
		}
		s.penalise(res.peer, err)
		s.retry(ctx, f)
	}
}

// apply adds chunk to r: a nil chunk (no leaf at or after the start) is a
// lie while leaves are left.
func (s *snapshotSync) apply(r *ledger.SnapshotRestore, chunk *ledger.StateChunk) error {
	if chunk == nil {
		return &chain.VerifyError{Reason: statetree.ErrEmptyRange, Detail: "no leaves where the state root has more"}
	}
	if len(chunk.Leaves) > s.cfg.StateChunkLeaves {
		return &chain.VerifyError{Reason: ledger.ErrChunkLimits, Detail: fmt.Sprintf("%d leaves for a request of %d", len(chunk.Leaves), s.cfg.StateChunkLeaves)}
	}
	return r.Add(chunk)
}

// get waits for a usable answer to f, asking the next candidate after each
// one that fails; it fails once every candidate failed maxRangeRounds
// times, or when ctx ends.
func (s *snapshotSync) get(ctx context.Context, f *stateFetch) (stateResult, error) {
	for {
		select {
		case res := <-f.done:
			switch {
			case res.err == errNoPeer:
				return res, fmt.Errorf("%w: state chunk of version %d at %s from %d peers, %d rounds",
					ErrAllPeersFailed, res.req.Version, res.req.Start.Short(), len(s.peers), f.rounds)
			case res.err == errRetry:
			case s.check(res) == nil:
				return res, nil
			}
			s.retry(ctx, f)
		case <-s.ticker.C:
			s.progress()
		case <-ctx.Done():
			return stateResult{}, ctx.Err()
		}
	}
}

// launch starts the fetch of the chunk at start.
func (s *snapshotSync) launch(ctx context.Context, start chain.Hash, withFrontier bool) *stateFetch {
	fctx, cancel := context.WithCancel(ctx)
	f := &stateFetch{
		req: protocol.StateRequest{Version: s.target.LedgerInfo.CommitInfo.Version, Start: start,
			MaxLeaves: uint32(s.cfg.StateChunkLeaves), WithFrontier: withFrontier},
		tried: map[peer.ID]bool{}, cancel: cancel,
	}
	s.attempt(fctx, f)
	return f
}

// retry makes f's next attempt, after its last one failed.
func (s *snapshotSync) retry(ctx context.Context, f *stateFetch) {
	f.cancel()
	fctx, cancel := context.WithCancel(ctx)
	f.cancel = cancel
	s.attempt(fctx, f)
}

// attempt asks f's request of the next candidate not tried in this round.
// Once every one was, it pauses (the answer is errRetry) and the round
// after tries them all again; after maxRangeRounds rounds the answer is
// errNoPeer.
func (s *snapshotSync) attempt(ctx context.Context, f *stateFetch) {
	f.done = make(chan stateResult, 1) // a cancelled attempt's answer is not read
	if p, ok := s.rot.next(f.tried); ok {
		expected := 0 // read here: perLeaf changes on the run's goroutine
		if s.cfg.AdaptiveFlow {
			expected = protocol.MaxStateResponseSize
			if s.perLeaf > 0 {
				expected = min(int(s.perLeaf*float64(f.req.MaxLeaves))+4096, expected)
			}
		}
		go s.request(ctx, p, f.req, expected, f.done)
		return
	}
	f.rounds++
	if f.rounds >= maxRangeRounds || !s.rot.anyUnbanned() {
		f.done <- stateResult{req: f.req, err: errNoPeer}
		return
	}
	clear(f.tried)
	pause, done := retryPause(f.rounds), f.done
	go func() {
		t := time.NewTimer(pause)
		defer t.Stop()
		select {
		case <-t.C:
			done <- stateResult{req: f.req, err: errRetry}
		case <-ctx.Done():
		}
	}()
}

// check scores the answer res and reports whether it may be used.
func (s *snapshotSync) check(res stateResult) error {
	outcome, err := OutcomeValid, error(nil)
	switch {
	case res.err == nil:
	case errors.Is(res.err, ErrMisbehaved):
		outcome, err = OutcomeInvalid, res.err
	default:
		outcome, err = OutcomeTimeout, res.err
	}
	if err == nil {
		switch res.resp.Status {
		case protocol.StatusSucceeded:
			if res.req.WithFrontier != (len(res.resp.Frontier) > 0) {
				outcome, err = OutcomeInvalid, fmt.Errorf("%w: frontier asked %v, sent %d hashes", ErrMisbehaved, res.req.WithFrontier, len(res.resp.Frontier))
			}
		case protocol.StatusNotEnoughBlocks, protocol.StatusBusy, protocol.StatusPruned, protocol.StatusIDNotFound:
			outcome, err = OutcomeUnavailable, fmt.Errorf("%w: %s", ErrUnavailable, res.resp.Status)
		default:
			outcome, err = OutcomeInvalid, fmt.Errorf("%w: status %s", ErrMisbehaved, res.resp.Status)
		}
	}
	switch {
	case outcome == OutcomeValid:
	case outcome == OutcomeInvalid:
		s.penalise(res.peer, err)
	case outcome == OutcomeTimeout && res.slow && s.cfg.AdaptiveFlow:
		s.scores.NoteSlow(res.peer, res.latency) // slow, not faulty
	case outcome == OutcomeTimeout:
		s.scores.Record(res.peer, outcome, res.latency)
		s.rot.timeouts[res.peer]++
	default:
		s.scores.Record(res.peer, outcome, res.latency)
	}
	if err != nil && outcome != OutcomeInvalid {
		s.log.Debug("state request failed", "peer", res.peer, "start", res.req.Start.Short(), "outcome", outcome, "err", err)
	}
	return err
}

// penalise bans p for a provably invalid answer.
func (s *snapshotSync) penalise(p peer.ID, err error) {
	s.scores.Record(p, OutcomeInvalid, 0)
	s.banned.add(p)
	s.log.Warn("peer sent an invalid state chunk", "peer", p, "err", err)
}

// request asks p for req and sends the answer to out.
func (s *snapshotSync) request(ctx context.Context, p peer.ID, req protocol.StateRequest, expected int, out chan<- stateResult) {
	sharing := 2 * expected
	fr := s.flows.start(p, expected, sharing, s.cfg.ChunkTimeout, time.Now())
	rctx, rcancel := context.WithTimeout(ctx, fr.timeout)
	defer rcancel()
	t0 := time.Now()
	resp, err := s.net.RequestState(rctx, p, req)
	res := stateResult{req: req, peer: p, resp: resp, err: err, latency: time.Since(t0)}
	got := 0
	if resp != nil && resp.Chunk != nil {
		got = stateChunkBytes(resp.Chunk)
	}
	res.slow = s.flows.done(fr, flowEndOf(ctx, err), got, 0, time.Now())
	select {
	case out <- res:
	case <-ctx.Done(): // the fetch moved on
	}
}

// notePerLeaf updates the average bytes of a leaf with chunk's.
func (s *snapshotSync) notePerLeaf(c *ledger.StateChunk) {
	if len(c.Leaves) == 0 {
		return
	}
	per := float64(stateChunkBytes(c)) / float64(len(c.Leaves))
	if s.perLeaf == 0 {
		s.perLeaf = per
	} else {
		s.perLeaf = (3*s.perLeaf + per) / 4
	}
}

// stateChunkBytes estimates the encoded bytes of c.
func stateChunkBytes(c *ledger.StateChunk) int {
	n := 64 + 34*(len(c.Proof.Left)+len(c.Proof.Right))
	for _, kv := range c.Leaves {
		n += len(kv.Key) + len(kv.Value) + 6
	}
	return n
}

// successor returns the key hash right after h, false if h is the last.
func successor(h chain.Hash) (chain.Hash, bool) {
	for i := len(h) - 1; i >= 0; i-- {
		h[i]++
		if h[i] != 0 {
			return h, true
		}
	}
	return h, false
}
