package node

import (
	"context"
	"log/slog"
	"time"
)

// prune keeps the node's history to cfg.PruneWindow committed versions:
// every PruneInterval it prunes the store below the committed version
// minus the window, and logs each prune that deleted something. It runs
// until ctx ends.
func (n *Node) prune(ctx context.Context, log *slog.Logger) {
	tick := time.NewTicker(n.cfg.PruneInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		committed := n.opened.Ledger.Committed().Version
		if committed <= n.cfg.PruneWindow {
			continue
		}
		before, err := n.opened.Disk.Earliest()
		if err != nil {
			log.Error("prune: read the earliest version", "err", err)
			continue
		}
		start := time.Now()
		w, err := n.opened.Disk.Prune(committed - n.cfg.PruneWindow)
		switch {
		case err != nil:
			log.Error("prune failed", "err", err)
		case w > before:
			log.Info("pruned history", "earliest_version", w, "committed_version", committed, "took", time.Since(start).Round(time.Millisecond))
		}
	}
}
