package node

import (
	"context"
	"log/slog"
	"time"
)

// slowSettle is how long a settle takes before it is logged at info.
const slowSettle = time.Second

// settle brings the ledger's state tree up to its transactions after each
// sync: a sync defers the blocks' state roots and leaves the tree to follow
// (ledger.Settle), which checks the root at the committed version against
// the signed one. A mismatch means the quorum signed a state that the
// transactions do not give, or this node executes them wrongly: it is
// logged as an error. It runs until ctx ends.
func (n *Node) settle(ctx context.Context, log *slog.Logger) {
	l := n.opened.Ledger
	for {
		if l.TreeVersion() < l.Version() {
			from, start := l.TreeVersion(), time.Now()
			err := l.Settle(ctx)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				log.Error("state tree does not settle", "tree_version", l.TreeVersion(), "err", err)
			default:
				// A node following the chain by short syncs settles
				// a few versions many times a second: only a long
				// settle is worth a line at info.
				took := time.Since(start)
				level := slog.LevelDebug
				if took >= slowSettle {
					level = slog.LevelInfo
				}
				log.Log(ctx, level, "state tree settled", "from_version", from, "tree_version", l.TreeVersion(),
					"took", took.Round(time.Millisecond))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-n.synced:
		}
	}
}
