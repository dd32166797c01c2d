package syncer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/protocol"
)

// Retriever fetches the blocks that quorum certificates certify, as the
// seed's BlockRetriever: the preferred peer (the author of the message that
// triggered the sync) first, then the QC's signers, each asked at most once;
// a response counts only if it verifies completely. Beyond the seed it can
// ask for many ancestors per request, hedge a slow peer with the next
// candidate, rank candidates by score and fall back to connected peers that
// did not sign. It is safe for concurrent use.
type Retriever struct {
	net      Network
	verifier *chain.Verifier
	scores   *Scores
	flows    *flows
	cfg      Config
	self     peer.ID
	log      *slog.Logger

	rngMu sync.Mutex
	rng   *rand.Rand
}

// NewRetriever returns a retriever that asks peers through net, verifies
// with verifier and records outcomes in scores. self is never asked.
func NewRetriever(net Network, verifier *chain.Verifier, scores *Scores, self peer.ID, cfg Config) *Retriever {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Retriever{
		net: net, verifier: verifier, scores: scores, flows: newFlows(cfg), cfg: cfg, self: self, log: log,
		rng: rand.New(rand.NewPCG(cfg.Seed, 0x7265747269657665)),
	}
}

// peerSet is a set of peers shared by the retrievals of one sync: peers that
// proved to misbehave are not asked again during that sync.
type peerSet struct {
	mu sync.Mutex
	m  map[peer.ID]bool
}

func newPeerSet() *peerSet { return &peerSet{m: make(map[peer.ID]bool)} }

func (s *peerSet) add(p peer.ID) {
	s.mu.Lock()
	s.m[p] = true
	s.mu.Unlock()
}

func (s *peerSet) has(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[p]
}

// BlockRequestFor returns the request for up to n blocks ending with the
// block qc certifies, stopping before target if target is not zero.
func BlockRequestFor(qc *chain.QuorumCert, n int, target chain.Hash) protocol.BlockRequest {
	return protocol.BlockRequest{BlockID: qc.CertifiedBlock().ID, Count: uint32(n), Target: target}
}

// RetrieveBlocksForQC returns up to n blocks: the block qc certifies, then its
// ancestors, newest first, each the parent of the one before, all verified
// against the validator set. It returns exactly n blocks unless it reached
// target (a block the caller has, not included) or a server's byte limit
// cut the answer short; it never returns an empty slice without an error.
//
// The first attempt goes to preferred; then the QC's signers are tried, each
// once. It returns ErrRoundDeadlineReached when ctx's deadline leaves no time
// for another attempt and ErrAllPeersFailed when no candidate is left.
// banned collects peers that misbehave; they are skipped (may be nil).
func (r *Retriever) RetrieveBlocksForQC(ctx context.Context, qc *chain.QuorumCert, n int, target chain.Hash, preferred peer.ID, banned *peerSet) ([]*chain.Block, error) {
	if banned == nil {
		banned = newPeerSet()
	}
	return r.retrieve(ctx, qc, n, target, preferred, "", banned, nil, r.recorder(banned))
}

// recordFunc takes note of the outcome of one attempt.
type recordFunc func(p peer.ID, o Outcome, latency time.Duration)

// recorder returns the recordFunc of a retrieval whose results count: the
// outcome goes to the scores, and a peer that sent an invalid response is
// banned for the rest of the sync.
func (r *Retriever) recorder(banned *peerSet) recordFunc {
	return func(p peer.ID, o Outcome, latency time.Duration) {
		r.scores.Record(p, o, latency)
		if o == OutcomeInvalid {
			banned.add(p)
		}
	}
}

// peekFunc sees, on the retrieving goroutine, the last block of a response
// from p that passed the structural checks, before its signatures are
// verified; then nil if the signatures turn out invalid.
type peekFunc func(last *chain.Block, p peer.ID)

// retrieve is RetrieveBlocksForQC with hooks: peek, if not nil, follows the
// responses; record takes note of each attempt's outcome. The peer deferred,
// if not empty, is asked last.
func (r *Retriever) retrieve(ctx context.Context, qc *chain.QuorumCert, n int, target chain.Hash, preferred, deferred peer.ID, banned *peerSet,
	peek peekFunc, record recordFunc) ([]*chain.Block, error) {
	req := BlockRequestFor(qc, n, target)
	candidates := r.candidates(qc, preferred, banned)
	if i := slices.Index(candidates, deferred); i >= 0 && deferred != "" {
		candidates = append(slices.Delete(candidates, i, i+1), deferred)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the attempts still in flight when one wins
	results := make(chan attemptResult, len(candidates))
	started := make(map[peer.ID]time.Time, len(candidates)) // attempts in flight
	defer func() {
		for p, t := range started { // losers of a hedge, cancelled now
			r.scores.NoteSlow(p, time.Since(t))
		}
	}()
	next, attempt, inFlight := 0, 0, 0
	deadlineReached := false
	var transfer time.Duration // of the last attempt launched, at its peer's rate

	launch := func() bool {
		for next < len(candidates) && banned.has(candidates[next]) {
			next++
		}
		if next >= len(candidates) {
			return false
		}
		attempt++
		p := candidates[next]
		expected := r.flows.expectBlocks(n, protocol.MaxBlockResponseSize)
		fr, timeout, ok := r.sizedTimeout(ctx, attempt, p, expected, expected*r.cfg.MaxParallelAttempts)
		if !ok {
			deadlineReached = true
			return false
		}
		next++
		inFlight++
		started[p] = time.Now()
		if r.cfg.AdaptiveFlow {
			transfer = r.flows.transfer(p, expected)
		}
		r.log.Debug("fetching blocks", "block_id", req.BlockID.Short(), "count", req.Count, "peer", p, "attempt", attempt, "timeout", timeout)
		go func() {
			actx, acancel := context.WithTimeout(ctx, timeout)
			defer acancel()
			start := time.Now()
			resp, err := r.net.RequestBlocks(actx, p, req)
			res := attemptResult{peer: p, resp: resp, err: err, latency: time.Since(start)}
			var got, blocks int
			if resp != nil {
				got, blocks = blocksBytes(resp.Blocks), len(resp.Blocks)
			}
			res.slow = r.flows.done(fr, flowEndOf(ctx, err), got, blocks, time.Now())
			results <- res
		}()
		return true
	}

	// The hedge waits HedgeDelay plus the time the last peer asked takes
	// to send what was asked at its measured rate: on a slow link a large
	// answer on its way is not duplicated.
	var hedge *time.Timer
	var hedgeC <-chan time.Time
	armHedge := func() {
		if r.cfg.HedgeDelay <= 0 {
			return
		}
		if d := r.cfg.HedgeDelay + transfer; hedge == nil {
			hedge = time.NewTimer(d)
			hedgeC = hedge.C
		} else {
			hedge.Reset(d)
		}
	}
	defer func() {
		if hedge != nil {
			hedge.Stop()
		}
	}()

	for {
		if inFlight == 0 {
			if !launch() {
				return nil, r.exhausted(req, attempt, deadlineReached)
			}
			armHedge()
			continue
		}
		select {
		case res := <-results:
			inFlight--
			delete(started, res.peer)
			blocks, outcome, err := r.check(res, qc, n, target, peek)
			if outcome == OutcomeTimeout && res.slow && r.cfg.AdaptiveFlow {
				// The peer delivered other answers meanwhile: slow or
				// congested, not faulty.
				r.scores.NoteSlow(res.peer, res.latency)
			} else {
				record(res.peer, outcome, res.latency)
			}
			if err == nil {
				return blocks, nil
			}
			if outcome == OutcomeInvalid {
				r.log.Warn("peer sent invalid blocks", "peer", res.peer, "block_id", req.BlockID.Short(), "err", err)
			} else {
				r.log.Debug("block request failed", "peer", res.peer, "block_id", req.BlockID.Short(), "outcome", outcome, "err", err)
			}
			if inFlight < r.cfg.MaxParallelAttempts && r.cfg.HedgeDelay > 0 && launch() {
				armHedge()
			}
		case <-hedgeC:
			if inFlight < r.cfg.MaxParallelAttempts && launch() {
				armHedge()
			}
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, fmt.Errorf("%w: fetching %s after %d attempts", ErrRoundDeadlineReached, req.BlockID.Short(), attempt)
			}
			return nil, ctx.Err()
		}
	}
}

func (r *Retriever) exhausted(req protocol.BlockRequest, attempts int, deadline bool) error {
	if deadline {
		r.log.Warn("block fetch stopped: deadline reached", "block_id", req.BlockID.Short(), "attempts", attempts)
		return fmt.Errorf("%w: fetching %s after %d attempts", ErrRoundDeadlineReached, req.BlockID.Short(), attempts)
	}
	r.log.Warn("block fetch failed: no more peers", "block_id", req.BlockID.Short(), "attempts", attempts)
	return fmt.Errorf("%w: fetching %s in %d attempts", ErrAllPeersFailed, req.BlockID.Short(), attempts)
}

type attemptResult struct {
	peer    peer.ID
	resp    *protocol.BlockResponse
	err     error
	latency time.Duration
	slow    bool // timed out while the peer delivered other answers
}

// sizedTimeout registers a request to p expected to bring expected bytes
// and returns it with its timeout: the attempt's base timeout plus the
// transfer time at p's measured rate (see [flows.start]), within what is
// left of ctx's deadline; false when nothing is left, and then nothing is
// registered.
func (r *Retriever) sizedTimeout(ctx context.Context, attempt int, p peer.ID, expected, sharing int) (flowRequest, time.Duration, bool) {
	base, ok := r.attemptTimeout(ctx, attempt)
	if !ok {
		return flowRequest{}, 0, false
	}
	if !r.cfg.AdaptiveFlow {
		expected, sharing = 0, 0
	}
	fr := r.flows.start(p, expected, sharing, base, time.Now())
	t := fr.timeout
	if d, ok := ctx.Deadline(); ok {
		t = min(t, time.Until(d))
	}
	return fr, max(t, time.Millisecond), true
}

// flowEndOf classifies the end of a request made under a context derived
// from ctx that returned err.
func flowEndOf(ctx context.Context, err error) flowEnd {
	switch {
	case err == nil, errors.Is(err, ErrMisbehaved):
		return flowDelivered
	case ctx.Err() != nil:
		return flowCancelled
	}
	return flowTimedOut
}

// attemptTimeout returns the timeout of the given attempt (1-based):
// AttemptTimeout·2^(attempt-1), capped by MaxAttemptTimeout and by what is
// left of ctx's deadline; false when nothing is left.
func (r *Retriever) attemptTimeout(ctx context.Context, attempt int) (time.Duration, bool) {
	t := r.cfg.AttemptTimeout
	for i := 1; i < attempt && t < r.cfg.MaxAttemptTimeout; i++ {
		t *= 2
	}
	t = min(t, r.cfg.MaxAttemptTimeout)
	if d, ok := ctx.Deadline(); ok {
		left := time.Until(d)
		if left <= 0 {
			return 0, false
		}
		t = min(t, left)
	}
	return t, true
}

// candidates returns the peers to ask, in order: preferred, then the QC's
// signers (at random, or ranked by score), then, if allowed, the other
// connected peers ranked by score. Nobody appears twice; self and banned
// peers never appear.
func (r *Retriever) candidates(qc *chain.QuorumCert, preferred peer.ID, banned *peerSet) []peer.ID {
	seen := map[peer.ID]bool{r.self: true, "": true}
	var out []peer.ID
	add := func(ps []peer.ID) {
		for _, p := range ps {
			if !seen[p] && !banned.has(p) {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	add([]peer.ID{preferred})
	r.rngMu.Lock()
	defer r.rngMu.Unlock()
	signers := qc.Signers()
	if r.cfg.RankPeers {
		signers = r.scores.Rank(signers, r.rng)
	} else {
		r.rng.Shuffle(len(signers), func(i, j int) { signers[i], signers[j] = signers[j], signers[i] })
	}
	add(signers)
	if r.cfg.FallbackToPeers {
		add(r.scores.Rank(r.net.Peers(), r.rng))
	}
	return out
}

// check turns an attempt's result into verified blocks, or an error with the
// outcome to score. peek, if not nil, follows the response (see peekFunc).
func (r *Retriever) check(res attemptResult, qc *chain.QuorumCert, n int, target chain.Hash, peek peekFunc) ([]*chain.Block, Outcome, error) {
	switch {
	case res.err == nil:
	case errors.Is(res.err, ErrMisbehaved):
		return nil, OutcomeInvalid, res.err
	default:
		return nil, OutcomeTimeout, res.err
	}
	if err := checkResponseShape(res.resp, qc, n, target); err != nil {
		if errors.Is(err, ErrUnavailable) {
			return nil, OutcomeUnavailable, err
		}
		return nil, OutcomeInvalid, err
	}
	if peek != nil {
		peek(res.resp.Blocks[len(res.resp.Blocks)-1], res.peer)
	}
	if err := verifyBlocks(r.verifier, res.resp.Blocks); err != nil {
		if peek != nil {
			peek(nil, res.peer)
		}
		return nil, OutcomeInvalid, err
	}
	return res.resp.Blocks, OutcomeValid, nil
}

// VerifyBlockResponse checks a response to BlockRequestFor(qc, n, target):
// a success status, 1 to n blocks, the first the block qc certifies, each
// next one the parent of the one before, every block valid against the
// validator set, and, when the status says the target was reached, the last
// block a child of target. An honest refusal wraps ErrUnavailable; anything
// else wraps ErrMisbehaved. The structure is checked first, then the blocks'
// signatures, in batches spread over GOMAXPROCS goroutines.
func VerifyBlockResponse(v *chain.Verifier, resp *protocol.BlockResponse, qc *chain.QuorumCert, n int, target chain.Hash) error {
	if err := checkResponseShape(resp, qc, n, target); err != nil {
		return err
	}
	return verifyBlocks(v, resp.Blocks)
}

// checkResponseShape runs the checks of VerifyBlockResponse that need no
// signature: status, count, the first block, parent links and target.
func checkResponseShape(resp *protocol.BlockResponse, qc *chain.QuorumCert, n int, target chain.Hash) error {
	switch resp.Status {
	case protocol.StatusSucceeded:
	case protocol.StatusSucceededWithTarget:
		if target.IsZero() {
			return misbehaved("status %s without a target", resp.Status)
		}
	case protocol.StatusNotEnoughBlocks, protocol.StatusIDNotFound, protocol.StatusBusy:
		return fmt.Errorf("%w: %s", ErrUnavailable, resp.Status)
	default:
		return misbehaved("status %s", resp.Status)
	}
	blocks := resp.Blocks
	if len(blocks) == 0 || len(blocks) > n {
		return misbehaved("%d blocks, asked for %d", len(blocks), n)
	}
	want := qc.CertifiedBlock()
	if b := blocks[0]; b == nil || b.ID != want.ID || b.Round() != want.Round || b.Epoch() != want.Epoch {
		return misbehaved("first block is not the certified block %s", want.ID.Short())
	}
	for i, b := range blocks {
		if b == nil {
			return misbehaved("block %d is missing", i)
		}
		if i > 0 {
			if err := chain.VerifyParent(blocks[i-1], b); err != nil {
				return misbehaved("block %d: %w", i, err)
			}
		}
		if b.ID == target {
			return misbehaved("block %d is the target, which must not be sent", i)
		}
	}
	if resp.Status == protocol.StatusSucceededWithTarget && blocks[len(blocks)-1].ParentID() != target {
		return misbehaved("status %s but the last block's parent is not the target", resp.Status)
	}
	return nil
}

func misbehaved(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMisbehaved}, args...)...)
}

// minBlocksPerWorker keeps the chunks verified in parallel large enough for
// batch verification to pay.
const minBlocksPerWorker = 8

// verifyBlocks verifies blocks against v, each as chain's VerifyBlock does:
// contiguous chunks, one per goroutine up to GOMAXPROCS, each chunk's
// signatures in one batch. Every goroutine has finished when it returns.
// The error names the first bad block and wraps ErrMisbehaved.
func verifyBlocks(v *chain.Verifier, blocks []*chain.Block) error {
	return verifyParts(blocks, v.VerifyBlocks)
}

// verifyChain verifies blocks, ascending and each the parent of the next,
// as chain's VerifyChain does, in contiguous parts, one per goroutine up to
// GOMAXPROCS: each part is a chain whose last QC is checked in full. The
// error names the first bad block and wraps ErrMisbehaved.
func verifyChain(v *chain.Verifier, blocks []*chain.Block) error {
	return verifyParts(blocks, v.VerifyChain)
}

// verifyParts runs verify over contiguous parts of blocks, one per
// goroutine up to GOMAXPROCS, each of at least minBlocksPerWorker blocks;
// verify returns the index of the first bad block of its part, or -1.
// Every goroutine has finished when it returns.
func verifyParts(blocks []*chain.Block, verify func([]*chain.Block) (int, error)) error {
	workers := min(runtime.GOMAXPROCS(0), (len(blocks)+minBlocksPerWorker-1)/minBlocksPerWorker)
	if workers <= 1 {
		if i, err := verify(blocks); err != nil {
			return misbehaved("block %d: %w", i, err)
		}
		return nil
	}
	size := (len(blocks) + workers - 1) / workers
	type result struct {
		bad int
		err error
	}
	results := make([]result, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo := w * size
		hi := min(lo+size, len(blocks))
		wg.Go(func() {
			i, err := verify(blocks[lo:hi])
			results[w] = result{bad: lo + i, err: err}
		})
	}
	wg.Wait()
	for _, r := range results {
		if r.err != nil {
			return misbehaved("block %d: %w", r.bad, r.err)
		}
	}
	return nil
}
