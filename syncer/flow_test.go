package syncer_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/protocol"
	"github.com/p2pnode/p2pnode/syncer"
)

// slowWorld serves a chain of n blocks of 100 transactions of 64 bytes
// (about 7 kB a block, 450 kB a window of 64) from 4 validators whose links
// carry rate bytes per second each.
func slowWorld(t *testing.T, n int, rate float64) *world {
	t.Helper()
	v := chaintest.NewValidators(11, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 100, TxSize: 64, Seed: 5})
	w := newWorldFrom(t, v, b.Extend(b.Genesis(), n))
	for _, id := range w.net.Peers() {
		w.net.Peer(id).BytesPerSecond = rate
	}
	return w
}

// TestForwardSlowHonestPeers checks that peers serving 100 kB/s each, so
// that a window of 64 blocks takes several times the 2 s base timeout, are
// neither timed out nor penalised: each request's timeout follows the bytes
// asked and the measured rate, and the windows adapt. With AdaptiveFlow off
// (fixed timeouts) the same peers time out.
func TestForwardSlowHonestPeers(t *testing.T) {
	const rate = 100_000
	synctest.Test(t, func(t *testing.T) {
		w := slowWorld(t, 400, rate)
		c, m := w.client(t, forwardConfig())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if err := m.SyncTo(ctx, w.syncInfo(), w.author()); err != nil {
			t.Fatal(err)
		}
		w.checkSynced(t, c)
		if st := m.Stats(); st.ForwardSyncs != 1 || st.ForwardWindows == 0 {
			t.Fatalf("stats %+v, want one forward fetch", st)
		}
		grown := false
		for _, p := range w.net.Peers() {
			fl := m.Flow(p)
			t.Logf("peer %s: %+v", p.ShortString(), fl)
			for _, o := range []syncer.Outcome{syncer.OutcomeTimeout, syncer.OutcomeInvalid} {
				if n := m.Scores().Count(p, o); n != 0 {
					t.Errorf("honest slow peer %s: %d outcomes %s", p.ShortString(), n, o)
				}
			}
			if fl.SlowTimeouts != 0 || fl.Stalls != 0 {
				t.Errorf("honest slow peer %s: flow %+v, want no timeout", p.ShortString(), fl)
			}
			if fl.Rate < rate/2 || fl.Rate > rate*3/2 {
				t.Errorf("peer %s: measured %.0f B/s, serves %d B/s", p.ShortString(), fl.Rate, rate)
			}
			grown = grown || fl.Window > 2
		}
		if !grown {
			t.Error("no peer's window grew past its initial 2 requests")
		}
	})
	t.Run("fixed timeouts", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := slowWorld(t, 400, rate)
			cfg := forwardConfig()
			cfg.AdaptiveFlow = false
			_, m := w.client(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			_ = m.SyncTo(ctx, w.syncInfo(), w.author()) // may fail: the point is the penalties
			timeouts := uint64(0)
			for _, p := range w.net.Peers() {
				timeouts += m.Scores().Count(p, syncer.OutcomeTimeout)
			}
			if timeouts == 0 {
				t.Fatal("no timeout with fixed 2 s timeouts: the slow peers do not test the sizing")
			}
		})
	})
}

// TestForwardStalledPeer checks that a peer that accepts requests and never
// answers is still timed out and penalised, while the honest peers are not,
// and that the sync completes from them.
func TestForwardStalledPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := slowWorld(t, 400, 1_000_000)
		staller := w.id(1)
		w.net.Peer(staller).OnCommitted = func(ctx context.Context, _ protocol.CommittedRequest, _ func() *protocol.CommittedResponse) (*protocol.CommittedResponse, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		c, m := w.client(t, forwardConfig())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if err := m.SyncTo(ctx, w.syncInfo(), w.author()); err != nil {
			t.Fatal(err)
		}
		w.checkSynced(t, c)
		if n := m.Scores().Count(staller, syncer.OutcomeTimeout); n == 0 {
			t.Errorf("stalled peer: no timeout recorded (flow %+v)", m.Flow(staller))
		}
		if fl := m.Flow(staller); fl.Stalls == 0 || fl.Window > 1 {
			t.Errorf("stalled peer: flow %+v, want stalls and a window of 1", fl)
		}
		if m.Scores().Score(staller) >= m.Scores().Score(w.id(0)) {
			t.Errorf("stalled peer scores %.1f, honest %.1f", m.Scores().Score(staller), m.Scores().Score(w.id(0)))
		}
		for _, i := range []int{0, 2, 3} {
			if n := m.Scores().Count(w.id(i), syncer.OutcomeTimeout); n != 0 {
				t.Errorf("honest peer %d: %d timeouts", i, n)
			}
		}
	})
}

// TestStateSyncSlowHonestPeers checks that chunk requests are timed the
// same way: peers serving 100 kB/s, whose chunks take several times a 1 s
// ChunkTimeout, are neither timed out nor penalised.
func TestStateSyncSlowHonestPeers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := slowWorld(t, 60, 100_000) // 5,800 transactions committed
		cfg := syncer.DefaultConfig()
		cfg.FastForwardRounds = 5
		cfg.ChunkTxs = 2000 // about 140 kB a chunk
		cfg.ChunkTimeout = time.Second
		c, m := w.client(t, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if err := m.SyncTo(ctx, w.syncInfo(), w.author()); err != nil {
			t.Fatal(err)
		}
		w.checkSynced(t, c)
		if m.Stats().FastForwards != 1 {
			t.Fatalf("stats %+v, want one fast-forward", m.Stats())
		}
		for _, p := range w.net.Peers() {
			if n := m.Scores().Count(p, syncer.OutcomeTimeout); n != 0 {
				t.Errorf("honest slow peer %s: %d timeouts (flow %+v)", p.ShortString(), n, m.Flow(p))
			}
		}
	})
}
