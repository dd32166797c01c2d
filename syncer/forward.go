package syncer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/protocol"
)

// The forward phase of a sync far behind: instead of walking back from the
// target one range at a time and holding every block until a known one is
// reached, it asks peers for the committed chain forward from the root, in
// windows of BlocksPerRequest rounds. Up to ForwardWindows windows are
// requested or waiting at once, spread over the candidate peers; each answer
// is verified on arrival, on the goroutine that fetched it, and the windows
// are inserted strictly in order as soon as the next one is verified. So
// fetching, verification and insertion overlap and memory is bounded by
// ForwardWindows windows, plus the insert in progress (maxInsertBatch
// blocks), whatever the gap. The existing walk fills any gap
// a window leaves and inserts the last few blocks above the committed one.

// maxPeerStrikes is how many failures in a row, with no valid answer
// between them, drop a peer from a forward fetch.
const maxPeerStrikes = 3

// maxInsertBatch and maxInsertBytes cap the blocks, and their payload
// bytes, that one insert takes: the store holds a batch's transactions in
// memory twice while it writes them.
const (
	maxInsertBatch = 256
	maxInsertBytes = 8 << 20
)

// fwdWindow is the committed blocks of rounds [from, to).
type fwdWindow struct {
	from, to uint64
	cursor   uint64         // the next round to ask for
	blocks   []*chain.Block // verified, ascending, each the parent of the next
	peer     peer.ID        // the peer that sent the last blocks
	inFlight bool
	done     bool
	queued   bool             // sent to the executor
	executed bool             // the executor is done with it
	gen      int              // counts restarts, so that a report on what w held before is not taken for its present
	failed   map[peer.ID]bool // peers not to ask again for this window
	empties  int              // empty answers received
	attempts int
	passes   int // times failed was cleared to ask the peers again
}

// fwdResult is the checked answer to one committed-range request.
type fwdResult struct {
	w       *fwdWindow
	peer    peer.ID
	blocks  []*chain.Block // verified
	status  protocol.Status
	outcome Outcome
	err     error
	latency time.Duration
	slow    bool // timed out while the peer delivered other answers
}

// forward is one forward fetch; its methods run on the syncing goroutine
// but for the requests, each on its own goroutine.
type forward struct {
	m       *Manager
	banned  *peerSet
	flows   *flows
	target  chain.BlockInfo // the committed block to reach
	peers   []peer.ID       // candidates, best first
	load    map[peer.ID]int // requests in flight per peer
	strikes map[peer.ID]int // failures in a row per peer
	windows []*fwdWindow    // open windows, in round order
	next    uint64          // the first round of the next window to open
	results chan fwdResult
	running int // requests in flight

	// inserting is how many windows at the head of windows an insert in
	// progress holds (0: none); the insert reports on insertDone.
	inserting  int
	insertDone chan error
	// held is the last block of the last insert, when no block at hand
	// certified it: it goes first in the next one (see certify).
	held *chain.Block
	// toExecute takes complete windows, in round order, to execute ahead
	// of their insert; executed brings them back (see [forward.execute]).
	toExecute chan execJob
	executed  chan execJob
}

// forwardSync fetches and inserts the committed chain from the root up to
// the block commitCert commits, when that block is unknown and more than
// Config.ForwardMinGap rounds past the root. It returns nil when no peer can
// serve the range (the walk that follows then fetches the blocks as
// before), and an error only when ctx ends or the local store fails. What
// it inserted stays: a later sync resumes from the new root.
func (m *Manager) forwardSync(ctx context.Context, commitCert *chain.QuorumCert, from peer.ID, banned *peerSet) error {
	if m.cfg.ForwardMinGap == 0 || !m.store.NeedSync(commitCert) {
		return nil
	}
	commit := commitCert.CommitInfo()
	root := m.store.Root().Info
	if commit.Round <= root.Round+m.cfg.ForwardMinGap {
		return nil
	}
	m.stats.forwardSyncs.Add(1)
	m.log.Info("forward fetch started", "peer", from, "commit_block_id", commit.ID.Short(),
		"commit_round", commit.Round, "root_round", root.Round)
	f := &forward{
		m: m, banned: banned, flows: m.retriever.flows, target: commit,
		peers:      m.stateSyncPeers(from, commitCert, banned),
		load:       make(map[peer.ID]int),
		strikes:    make(map[peer.ID]int),
		next:       root.Round + 1,
		results:    make(chan fwdResult, m.cfg.ForwardWindows),
		insertDone: make(chan error, 1),
		toExecute:  make(chan execJob, m.cfg.ForwardWindows),
		executed:   make(chan execJob, m.cfg.ForwardWindows),
	}
	began := time.Now()
	err := f.run(ctx)
	root = m.store.Root().Info
	if errors.Is(err, ErrAllPeersFailed) {
		m.log.Info("forward fetch stopped: no peer serves the range", "root_round", root.Round, "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	m.log.Info("forward fetch done", "root_round", root.Round, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// run fetches until the target is reached, returning ErrAllPeersFailed or
// ErrRoundDeadlineReached when it cannot go on. Inserts run on a goroutine
// of their own, one at a time, so that requests go on while the store
// writes. Every request and insert has ended when it returns.
func (f *forward) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var executor sync.WaitGroup
	executor.Go(func() { f.execute(ctx) })
	defer func() {
		cancel()
		for ; f.running > 0; f.running-- {
			<-f.results
		}
		if f.inserting > 0 {
			<-f.insertDone
		}
		close(f.toExecute)
		go func() { executor.Wait(); close(f.executed) }()
		for range f.executed {
		}
	}()
	for {
		if f.inserting == 0 && (f.m.store.Root().Info.Round >= f.target.Round || f.m.store.BlockExists(f.target.ID)) {
			return nil
		}
		window := f.windowBlocks()
		perWindow := f.flows.expectBlocks(int(window), protocol.MaxCommittedResponseSize)
		// ForwardWindows windows may have blocks still to come: a window
		// done but waiting for the windows before it frees its slot, so
		// that the links stay busy (on a long link, windows that open
		// together finish together, and reopening them all at once costs
		// each connection a round trip and its congestion window). As many
		// again may wait, done. The windows of the insert in progress hold
		// no slot: the stages before the insert keep working while the
		// store writes.
		fetching, open := 0, len(f.windows)-f.inserting
		for _, w := range f.windows[f.inserting:] {
			if !w.done {
				fetching++
			}
		}
		for ; fetching < f.m.cfg.ForwardWindows && open < 2*f.m.cfg.ForwardWindows && f.next <= f.target.Round &&
			(open == 0 || (open+1)*perWindow <= f.m.cfg.ForwardMaxBytes); fetching, open = fetching+1, open+1 {
			to := min(f.next+window, f.target.Round+1)
			f.windows = append(f.windows, &fwdWindow{from: f.next, to: to, cursor: f.next, failed: make(map[peer.ID]bool)})
			f.next = to
		}
		if n := uint64(len(f.windows) - f.inserting); n > f.m.stats.forwardPeak.Load() {
			f.m.stats.forwardPeak.Store(n)
		}
		if len(f.windows) == 0 {
			return nil // all inserted: the walk adds what the windows lacked
		}
		if f.inserting == 0 {
			changed, err := f.insertReady(ctx)
			if err != nil {
				return err
			}
			if changed && f.inserting == 0 {
				continue
			}
		}
		for _, w := range f.windows[f.inserting:] {
			if !w.done && !w.inFlight {
				launched, err := f.launch(ctx, w)
				if err != nil {
					return err
				}
				if !launched {
					continue // every window is full: wait for an answer
				}
			}
		}
		if f.running == 0 && f.inserting == 0 && !f.executing() {
			return fmt.Errorf("%w: forward fetch from round %d", ErrAllPeersFailed, f.windows[0].cursor)
		}
		select {
		case r := <-f.results:
			f.running--
			f.handle(r)
			f.feed()
		case j := <-f.executed:
			if j.w.gen == j.gen {
				j.w.executed = true
			}
			f.feed()
		case err := <-f.insertDone:
			n := f.inserting
			f.inserting = 0
			if err != nil {
				return err
			}
			f.m.stats.forwardWindows.Add(uint64(n))
			clear(f.windows[:n])
			f.windows = f.windows[n:]
			f.feed()
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%w: forward fetch from round %d", ErrRoundDeadlineReached, f.windows[0].cursor)
			}
			return ctx.Err()
		}
	}
}

// windowBlocks returns the rounds of the next window: BlocksPerRequest,
// or fewer when the blocks seen so far are large, so that one answer
// carries about ForwardRequestBytes (and ForwardWindows windows stay
// within memory whatever the block size).
func (f *forward) windowBlocks() uint64 {
	n := uint64(f.m.cfg.BlocksPerRequest)
	if !f.m.cfg.AdaptiveFlow {
		return n
	}
	per := f.flows.blockSize()
	if per == 0 {
		return n // nothing seen yet: the server's byte limit cuts large blocks short
	}
	return max(1, min(n, uint64(f.m.cfg.ForwardRequestBytes/per)))
}

// pick returns the peer to ask for w: of the candidates that have not
// failed w, are not banned and not dropped, the one whose window has the
// most room, then the least loaded, best ranked first. busy reports that
// there are such candidates but every window is full; with no request of
// this fetch in flight windows are not looked at (the requests filling
// them are another sync's).
func (f *forward) pick(w *fwdWindow) (p peer.ID, ok, busy bool) {
	var best peer.ID
	bestSpare, found := 0, false
	for _, p := range f.peers {
		if w.failed[p] || f.banned.has(p) || f.strikes[p] >= maxPeerStrikes {
			continue
		}
		spare, _ := f.flows.spare(p)
		if f.running == 0 || !f.m.cfg.AdaptiveFlow {
			spare = 1
		}
		if spare == 0 {
			busy = true
			continue
		}
		if !found || spare > bestSpare || (spare == bestSpare && f.load[p] < f.load[best]) {
			best, bestSpare, found = p, spare, true
		}
	}
	return best, found, busy && !found
}

// launch sends the request for what w lacks to a peer, on its own
// goroutine, which verifies the answer before handing it over. It returns
// false, launching nothing, when every candidate's window is full.
func (f *forward) launch(ctx context.Context, w *fwdWindow) (bool, error) {
	p, ok, busy := f.pick(w)
	if busy {
		return false, nil
	}
	if !ok && w.passes < 1 {
		// Every candidate failed this window once: give each one more try
		// (a timeout may have been a hiccup).
		w.passes++
		clear(w.failed)
		if p, ok, busy = f.pick(w); busy {
			return false, nil
		}
	}
	if !ok {
		return false, fmt.Errorf("%w: rounds %d to %d after %d attempts", ErrAllPeersFailed, w.cursor, w.to-1, w.attempts)
	}
	w.attempts++
	req := protocol.CommittedRequest{FromRound: w.cursor, ToRound: w.to, MaxBlocks: uint32(min(uint64(f.m.cfg.BlocksPerRequest), w.to-w.cursor))}
	expected := f.flows.expectBlocks(int(req.MaxBlocks), protocol.MaxCommittedResponseSize)
	sharing := min(f.m.cfg.ForwardWindows*expected, f.m.cfg.ForwardMaxBytes)
	fr, timeout, ok := f.m.retriever.sizedTimeout(ctx, w.attempts, p, expected, sharing)
	if !ok {
		return false, fmt.Errorf("%w: rounds %d to %d after %d attempts", ErrRoundDeadlineReached, w.cursor, w.to-1, w.attempts)
	}
	w.inFlight = true
	f.load[p]++
	f.running++
	f.m.log.Debug("fetching committed blocks", "from_round", req.FromRound, "to_round", req.ToRound, "peer", p, "attempt", w.attempts, "timeout", timeout)
	go func() {
		actx, acancel := context.WithTimeout(ctx, timeout)
		defer acancel()
		start := time.Now()
		resp, err := f.m.net.RequestCommitted(actx, p, req)
		res := fwdResult{w: w, peer: p, latency: time.Since(start)}
		var got, blocks int
		if resp != nil {
			got, blocks = blocksBytes(resp.Blocks), len(resp.Blocks)
		}
		res.slow = f.flows.done(fr, flowEndOf(ctx, err), got, blocks, time.Now())
		res.blocks, res.status, res.outcome, res.err = checkCommitted(f.m.verifier, &req, resp, err)
		f.results <- res
	}()
	return true, nil
}

// checkCommitted turns the answer to req into verified blocks, or an error
// with the outcome to score.
func checkCommitted(v *chain.Verifier, req *protocol.CommittedRequest, resp *protocol.CommittedResponse, err error) ([]*chain.Block, protocol.Status, Outcome, error) {
	switch {
	case err == nil:
	case errors.Is(err, ErrMisbehaved):
		return nil, 0, OutcomeInvalid, err
	default:
		return nil, 0, OutcomeTimeout, err
	}
	outcome := OutcomeValid
	switch resp.Status {
	case protocol.StatusSucceeded:
	case protocol.StatusNotEnoughBlocks:
		outcome = OutcomeUnavailable
	case protocol.StatusBusy, protocol.StatusBadRequest, protocol.StatusPruned:
		return nil, resp.Status, OutcomeUnavailable, fmt.Errorf("%w: %s", ErrUnavailable, resp.Status)
	default:
		return nil, resp.Status, OutcomeInvalid, misbehaved("status %s", resp.Status)
	}
	if err := VerifyCommittedResponse(v, req, resp); err != nil {
		return nil, resp.Status, OutcomeInvalid, err
	}
	return resp.Blocks, resp.Status, outcome, nil
}

// VerifyCommittedResponse checks the blocks of a response to req: at most
// req.MaxBlocks, rounds ascending within [req.FromRound, req.ToRound), each
// the parent of the next, every block valid against the validator set as
// chain's VerifyChain checks a chain (every author's signature, and the
// signatures of the QC in the last block of each part verified on one of
// GOMAXPROCS goroutines; the other QCs are authenticated by the hash
// chain). Whether they are committed shows only when they link to the
// local chain and the QCs above them commit them. Errors wrap
// ErrMisbehaved.
func VerifyCommittedResponse(v *chain.Verifier, req *protocol.CommittedRequest, resp *protocol.CommittedResponse) error {
	blocks := resp.Blocks
	if len(blocks) > int(req.MaxBlocks) {
		return misbehaved("%d blocks, asked for at most %d", len(blocks), req.MaxBlocks)
	}
	for i, b := range blocks {
		if b == nil {
			return misbehaved("block %d is missing", i)
		}
		if r := b.Round(); r < req.FromRound || r >= req.ToRound {
			return misbehaved("block %d of round %d, outside rounds %d to %d", i, r, req.FromRound, req.ToRound-1)
		}
		if i > 0 {
			if err := chain.VerifyParent(b, blocks[i-1]); err != nil {
				return misbehaved("block %d: %w", i, err)
			}
		}
	}
	return verifyChain(v, blocks)
}

// handle takes in the answer r: scores its peer, then adds its blocks to
// its window or marks the peer as failed for it.
func (f *forward) handle(r fwdResult) {
	w := r.w
	w.inFlight = false
	f.load[r.peer]--
	if r.outcome == OutcomeTimeout && r.slow && f.m.cfg.AdaptiveFlow {
		// The peer delivered other answers meanwhile: it is slow, or the
		// link congested, not faulty. Its window has shrunk; ask again,
		// of whichever peer has room.
		f.m.scores.NoteSlow(r.peer, r.latency)
		f.m.log.Debug("committed request timed out at a slow peer", "peer", r.peer, "from_round", w.cursor, "err", r.err)
		return
	}
	f.m.scores.Record(r.peer, r.outcome, r.latency)
	switch {
	case r.outcome == OutcomeInvalid:
		f.banned.add(r.peer)
		f.m.log.Warn("peer sent invalid committed blocks", "peer", r.peer, "from_round", w.cursor, "err", r.err)
		w.failed[r.peer] = true
		return
	case r.status == protocol.StatusPruned:
		// The peer keeps no history this far back: no strike, since it
		// may serve the later windows.
		f.m.log.Debug("peer pruned the window's rounds", "peer", r.peer, "from_round", w.cursor)
		w.failed[r.peer] = true
		return
	case r.err != nil:
		f.m.log.Debug("committed request failed", "peer", r.peer, "from_round", w.cursor, "outcome", r.outcome, "err", r.err)
		f.strikes[r.peer]++
		w.failed[r.peer] = true
		return
	}
	f.m.stats.blocksFetched.Add(uint64(len(r.blocks)))
	if len(r.blocks) == 0 {
		w.failed[r.peer] = true
		if r.status == protocol.StatusNotEnoughBlocks {
			f.strikes[r.peer]++
			return
		}
		// An empty window is legal (rounds that all timed out) but rare:
		// believe it from two peers, or from the only one left.
		w.empties++
		if _, other, busy := f.pick(w); w.empties >= 2 || (!other && !busy) {
			w.done = true
		}
		return
	}
	f.strikes[r.peer] = 0
	if n := len(w.blocks); n > 0 && r.blocks[0].ParentID() != w.blocks[n-1].ID {
		// The rest of a cut window does not follow its first part: one of
		// the two peers lied. Start the window again elsewhere.
		f.m.stats.forwardDropped.Add(1)
		f.restart(w, r.peer)
		return
	}
	w.blocks = append(w.blocks, r.blocks...)
	w.peer = r.peer
	w.cursor = w.blocks[len(w.blocks)-1].Round() + 1
	switch {
	case w.cursor >= w.to:
		w.done = true
	case r.status == protocol.StatusNotEnoughBlocks:
		w.failed[r.peer] = true // the peer has no more: ask the rest elsewhere
	}
}

// restart drops what w holds and asks it again of a peer other than p.
func (f *forward) restart(w *fwdWindow, p peer.ID) {
	w.blocks, w.cursor, w.done, w.empties = nil, w.from, false, 0
	w.queued, w.executed = false, false
	w.gen++
	w.failed[p] = true
}
