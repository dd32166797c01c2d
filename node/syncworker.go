package node

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/blockstore"
	"github.com/p2pnode/p2pnode/chain/store"
	"github.com/p2pnode/p2pnode/syncer"
)

// syncWorker is the one goroutine that runs syncs. Gossip offers it
// SyncInfos ahead of the node; while a sync runs it keeps only the best
// pending one, so a burst of announcements costs one sync. It is safe for
// concurrent use; run is called once.
type syncWorker struct {
	mgr     *syncer.Manager
	store   *blockstore.Store
	timeout time.Duration
	log     *slog.Logger
	done    func(err error) // told about every sync's end
	ops     *opsMetrics     // observes successful syncs; nil: not measured

	mu      sync.Mutex
	pending *syncOffer
	wake    chan struct{}
}

type syncOffer struct {
	si   *chain.SyncInfo
	from peer.ID
}

func newSyncWorker(mgr *syncer.Manager, st *blockstore.Store, timeout time.Duration, log *slog.Logger, done func(error)) *syncWorker {
	return &syncWorker{mgr: mgr, store: st, timeout: timeout, log: log, done: done, wake: make(chan struct{}, 1)}
}

// syncProgress is how far a SyncInfo reaches: the round of the block its
// commit cert commits and the round of its highest QC.
type syncProgress struct{ commit, qc uint64 }

func progressOf(si *chain.SyncInfo) syncProgress {
	return syncProgress{commit: si.CommitRound(), qc: si.HighestQC.Round()}
}

// ahead reports whether p reaches past q in either respect.
func (p syncProgress) ahead(q syncProgress) bool { return p.commit > q.commit || p.qc > q.qc }

// better orders offers: a higher commit first, then a higher QC.
func (p syncProgress) better(q syncProgress) bool {
	return p.commit > q.commit || (p.commit == q.commit && p.qc > q.qc)
}

// local is the node's own progress.
func (w *syncWorker) local() syncProgress {
	si := w.store.SyncInfo(nil)
	return progressOf(&si)
}

// offer queues si, which from sent and which was verified, if it is ahead
// of the node and better than the pending offer. It never blocks.
func (w *syncWorker) offer(si *chain.SyncInfo, from peer.ID) {
	p := progressOf(si)
	if !p.ahead(w.local()) {
		return
	}
	w.mu.Lock()
	if w.pending == nil || p.better(progressOf(w.pending.si)) {
		w.pending = &syncOffer{si: si, from: from}
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// run first completes an interrupted fast-forward (target, if not nil)
// once peers are connected, then runs the offered syncs one at a time
// until ctx ends.
func (w *syncWorker) run(ctx context.Context, target *store.SyncTarget, peersReady func(context.Context) error) {
	if target != nil {
		w.resume(ctx, target, peersReady)
	}
	// After a failed sync the worker waits before the next one, doubling
	// the pause up to a cap, so that a node whose peers cannot serve it yet
	// (they have not committed as far, or rate-limit it) does not flood
	// them with syncs that fail at once; a success resets the pause.
	var pause time.Duration
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		}
		w.mu.Lock()
		o := w.pending
		w.pending = nil
		w.mu.Unlock()
		if o == nil || !progressOf(o.si).ahead(w.local()) {
			continue
		}
		if w.sync(ctx, o) {
			pause = 0
			continue
		}
		pause = min(max(2*pause, minSyncPause), maxSyncPause)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		select { // look at the best offer that came meanwhile
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// The pause after a failed sync grows from minSyncPause to maxSyncPause.
const (
	minSyncPause = 100 * time.Millisecond
	maxSyncPause = 5 * time.Second
)

// catchUpRounds is how many committed rounds one sync must gain to be
// logged at Info.
const catchUpRounds = 10

// sync runs one sync to o and reports whether it succeeded.
func (w *syncWorker) sync(ctx context.Context, o *syncOffer) bool {
	sctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	start, before := time.Now(), w.mgr.Stats()
	local := w.local()
	w.log.Debug("sync start", "peer", o.from, "commit_round", o.si.CommitRound(), "qc_round", o.si.HighestQC.Round(),
		"local_commit_round", local.commit, "local_qc_round", local.qc)
	err := w.mgr.SyncTo(sctx, o.si, o.from)
	w.done(err)
	switch {
	case err == nil:
		if w.ops != nil {
			w.ops.observeSync(before, w.mgr.Stats(), start)
		}
		// Following the chain round by round is routine; a catch-up over
		// many rounds is a state change an operator wants to see.
		now := w.local()
		lvl := slog.LevelDebug
		if now.commit >= local.commit+catchUpRounds {
			lvl = slog.LevelInfo
		}
		w.log.Log(ctx, lvl, "synced", "peer", o.from, "commit_round", now.commit, "qc_round", now.qc,
			"from_commit_round", local.commit, "took", time.Since(start))
	case ctx.Err() != nil:
	case syncer.IsPeerFault(err):
		w.log.Warn("sync failed", "peer", o.from, "err", err)
	default:
		w.log.Info("sync failed", "peer", o.from, "err", err)
	}
	return err == nil
}

// resume retries the interrupted fast-forward with backoff until it
// completes or ctx ends.
func (w *syncWorker) resume(ctx context.Context, t *store.SyncTarget, peersReady func(context.Context) error) {
	delay := time.Second
	for {
		if err := peersReady(ctx); err != nil {
			return
		}
		w.log.Info("resuming fast-forward", "round", t.QCs[2].CommitInfo().Round, "version", t.QCs[2].CommitInfo().Version)
		sctx, cancel := context.WithTimeout(ctx, w.timeout)
		start, before := time.Now(), w.mgr.Stats()
		err := w.mgr.ResumeFastForward(sctx, t.Blocks, t.QCs)
		if err == nil && w.ops != nil {
			w.ops.observeSync(before, w.mgr.Stats(), start)
		}
		cancel()
		w.done(err)
		if err == nil {
			w.log.Info("fast-forward resumed and completed", "round", w.store.Root().Info.Round)
			return
		}
		if ctx.Err() != nil {
			return
		}
		w.log.Warn("resume fast-forward failed", "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
}

// syncResult names how a sync ended, for metrics.
func syncResult(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syncer.ErrRoundDeadlineReached), errors.Is(err, context.DeadlineExceeded):
		return "deadline"
	case errors.Is(err, syncer.ErrAllPeersFailed):
		return "all_peers_failed"
	case errors.Is(err, syncer.ErrTooFarBehind):
		return "too_far_behind"
	case errors.Is(err, syncer.ErrMisbehaved):
		return "misbehaved"
	case errors.Is(err, syncer.ErrUnavailable):
		return "unavailable"
	default:
		return "error"
	}
}
