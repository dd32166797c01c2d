package syncer

import (
	"sync/atomic"
	"time"
)

type stats struct {
	runs, failures, fastForwards, blocksFetched, txsSynced, stateSyncNanos    atomic.Uint64
	snapshots                                                                 atomic.Uint64
	forwardSyncs, forwardWindows, forwardRelinks, forwardDropped, forwardPeak atomic.Uint64
}

// Stats counts what the manager did since it started.
type Stats struct {
	// Runs and Failures count SyncTo calls and those that failed (not
	// counting cancellations).
	Runs, Failures uint64
	// FastForwards counts state syncs started.
	FastForwards uint64
	// BlocksFetched counts verified blocks received from peers.
	BlocksFetched uint64
	// TxsSynced counts transactions applied by state sync (replaying).
	TxsSynced uint64
	// Snapshots counts fast-forwards that restored a state snapshot.
	Snapshots uint64
	// StateSyncTime is the total time spent in state sync.
	StateSyncTime time.Duration
	// ForwardSyncs counts forward fetches of the committed chain started.
	ForwardSyncs uint64
	// ForwardWindows counts the windows they inserted.
	ForwardWindows uint64
	// ForwardRelinks counts windows whose first block did not follow the
	// blocks inserted before it, so that the gap was filled walking back
	// by id; ForwardDropped counts those that still did not link and were
	// asked again of another peer.
	ForwardRelinks, ForwardDropped uint64
	// ForwardPeakWindows is the most windows a forward fetch held at once
	// (requested or waiting to be inserted).
	ForwardPeakWindows uint64
}

// Stats returns a snapshot of the manager's counters.
func (m *Manager) Stats() Stats {
	return Stats{
		Runs:          m.stats.runs.Load(),
		Failures:      m.stats.failures.Load(),
		FastForwards:  m.stats.fastForwards.Load(),
		BlocksFetched: m.stats.blocksFetched.Load(),
		TxsSynced:     m.stats.txsSynced.Load(),
		Snapshots:     m.stats.snapshots.Load(),
		StateSyncTime: time.Duration(m.stats.stateSyncNanos.Load()),

		ForwardSyncs:       m.stats.forwardSyncs.Load(),
		ForwardWindows:     m.stats.forwardWindows.Load(),
		ForwardRelinks:     m.stats.forwardRelinks.Load(),
		ForwardDropped:     m.stats.forwardDropped.Load(),
		ForwardPeakWindows: m.stats.forwardPeak.Load(),
	}
}
