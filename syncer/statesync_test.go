package syncer_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pnode/p2pnode/protocol"
	"github.com/p2pnode/p2pnode/syncer"
)

// TestStateSyncWaitsForPeersBehindTheTarget: peers that have not committed
// as far as the target answer not_enough_blocks for a while; the state sync
// retries the range on all of them after pauses instead of failing at once.
func TestStateSyncWaitsForPeersBehindTheTarget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 4, 40, 4)
		ready := time.Now().Add(time.Second) // virtual time
		var refused atomic.Int64
		for _, id := range w.net.Peers() {
			w.net.Peer(id).OnChunk = func(_ context.Context, _ protocol.ChunkRequest, honest func() *protocol.ChunkResponse) (*protocol.ChunkResponse, error) {
				if time.Now().Before(ready) {
					refused.Add(1)
					return &protocol.ChunkResponse{Status: protocol.StatusNotEnoughBlocks}, nil
				}
				return honest(), nil
			}
		}
		cfg := syncer.DefaultConfig()
		cfg.FastForwardRounds = 5
		cfg.ChunkTxs = 20
		c, m := w.client(t, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := m.SyncTo(ctx, w.syncInfo(), w.author()); err != nil {
			t.Fatalf("sync: %v", err)
		}
		w.checkSynced(t, c)
		if refused.Load() == 0 {
			t.Fatal("no request was refused: the test proves nothing")
		}
	})
}
