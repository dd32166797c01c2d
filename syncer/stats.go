package syncer

import (
	"sync/atomic"
	"time"
)

type stats struct {
	runs, failures, fastForwards, blocksFetched, txsSynced, stateSyncNanos atomic.Uint64
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
	// TxsSynced counts transactions applied by state sync.
	TxsSynced uint64
	// StateSyncTime is the total time spent in state sync.
	StateSyncTime time.Duration
}

// Stats returns a snapshot of the manager's counters.
func (m *Manager) Stats() Stats {
	return Stats{
		Runs:          m.stats.runs.Load(),
		Failures:      m.stats.failures.Load(),
		FastForwards:  m.stats.fastForwards.Load(),
		BlocksFetched: m.stats.blocksFetched.Load(),
		TxsSynced:     m.stats.txsSynced.Load(),
		StateSyncTime: time.Duration(m.stats.stateSyncNanos.Load()),
	}
}
