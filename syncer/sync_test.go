package syncer_test

import (
	"context"
	"testing"
	"time"

	"github.com/p2pnode/p2pnode/syncer"
)

func TestSyncToCatchesUp(t *testing.T) {
	for name, cfg := range map[string]syncer.Config{
		"seed":          syncer.SeedConfig(),
		"default":       syncer.DefaultConfig(),
		"fetch-no-ffwd": func() syncer.Config { c := syncer.DefaultConfig(); c.FastForwardRounds = 1 << 20; return c }(),
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, 4, 300, 3)
			c, m := w.client(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := m.SyncTo(ctx, w.syncInfo(), w.author()); err != nil {
				t.Fatal(err)
			}
			want := w.server.store.HighestQC()
			if got := c.store.HighestQC(); got.CertifiedBlock() != want.CertifiedBlock() {
				t.Fatalf("client highest QC round %d, want %d", got.Round(), want.Round())
			}
			if got, want := c.ledger.Committed(), w.server.ledger.Committed(); got != want {
				t.Fatalf("client committed %d/%d, server %d/%d", got.Round, got.Version, want.Round, want.Version)
			}
			t.Logf("stats %+v", m.Stats())
		})
	}
}
