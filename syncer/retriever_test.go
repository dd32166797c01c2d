package syncer_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/protocol"
	"github.com/p2pnode/p2pnode/syncer"
	"github.com/p2pnode/p2pnode/syncer/syncertest"
)

// askLog records, in order, the peers a retrieval asked.
type askLog struct {
	mu    sync.Mutex
	peers []peer.ID
	at    []time.Time
	// deadlines are the attempts' context deadlines.
	deadlines []time.Time
}

func (l *askLog) add(p peer.ID, ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.peers = append(l.peers, p)
	l.at = append(l.at, time.Now())
	d, _ := ctx.Deadline()
	l.deadlines = append(l.deadlines, d)
}

func (l *askLog) asked() []peer.ID {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.peers)
}

// answerAll makes every peer of w record its block requests in log and
// answer with answer.
func answerAll(w *world, log *askLog, answer func(ctx context.Context, p peer.ID, honest func() *protocol.BlockResponse) (*protocol.BlockResponse, error)) {
	for _, id := range w.net.Peers() {
		w.net.Peer(id).OnBlocks = func(ctx context.Context, _ protocol.BlockRequest, honest func() *protocol.BlockResponse) (*protocol.BlockResponse, error) {
			log.add(id, ctx)
			return answer(ctx, id, honest)
		}
	}
}

func busy(context.Context, peer.ID, func() *protocol.BlockResponse) (*protocol.BlockResponse, error) {
	return &protocol.BlockResponse{Status: protocol.StatusBusy}, nil
}

func silent(ctx context.Context, _ peer.ID, _ func() *protocol.BlockResponse) (*protocol.BlockResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func newRetriever(w *world, self peer.ID, cfg syncer.Config) (*syncer.Retriever, *syncer.Scores) {
	scores := syncer.NewScores(cfg.ScoreHalfLife)
	return syncer.NewRetriever(w.net, w.v.Verifier, scores, self, cfg), scores
}

func sortedIDs(ps []peer.ID) []peer.ID {
	out := slices.Clone(ps)
	slices.Sort(out)
	return out
}

// TestRetrieverPeerOrder checks the seed's order of candidates: the
// preferred peer first, even if it did not sign, then every signer exactly
// once in an order drawn from Config.Seed; never self, never a connected
// peer that did not sign.
func TestRetrieverPeerOrder(t *testing.T) {
	// 7 validators; QCs signed by 0..4 (a quorum). 5 and 6 are connected
	// but did not sign.
	v, nodes := buildChain(7, 5, 1, []int{0, 1, 2, 3, 4})
	qc := nodes[4].QC
	ids := func(idx ...int) []peer.ID {
		var out []peer.ID
		for _, i := range idx {
			out = append(out, v.Signers[i].ID())
		}
		return out
	}
	tests := []struct {
		name      string
		self      peer.ID
		preferred peer.ID
		wantRest  []peer.ID // asked after the preferred peer, in any order
	}{
		{"preferred signer", "client", v.Signers[2].ID(), ids(0, 1, 3, 4)},
		{"preferred non-signer", "client", v.Signers[6].ID(), ids(0, 1, 2, 3, 4)},
		{"self is a signer", v.Signers[1].ID(), v.Signers[0].ID(), ids(2, 3, 4)},
		{"preferred is self", v.Signers[1].ID(), v.Signers[1].ID(), ids(0, 2, 3, 4)},
		{"no preferred", "client", "", ids(0, 1, 2, 3, 4)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orders := map[uint64][]peer.ID{}
			for _, seed := range []uint64{1, 2, 3, 4, 5, 1} {
				w := newWorldFrom(t, v, nodes)
				var log askLog
				answerAll(w, &log, busy)
				cfg := syncer.SeedConfig()
				cfg.Seed = seed
				r, _ := newRetriever(w, tt.self, cfg)
				_, err := r.RetrieveBlocksForQC(context.Background(), &qc, 1, chain.Hash{}, tt.preferred, nil)
				if !errors.Is(err, syncer.ErrAllPeersFailed) {
					t.Fatalf("seed %d: err %v, want ErrAllPeersFailed", seed, err)
				}
				asked := log.asked()
				rest := asked
				if tt.preferred != "" && tt.preferred != tt.self {
					if asked[0] != tt.preferred {
						t.Fatalf("seed %d: first asked %s, want the preferred peer %s", seed, asked[0], tt.preferred)
					}
					rest = asked[1:]
				}
				if got, want := sortedIDs(rest), sortedIDs(tt.wantRest); !slices.Equal(got, want) {
					t.Fatalf("seed %d: asked after the preferred peer %v, want each of %v once", seed, got, want)
				}
				if prev, ok := orders[seed]; ok && !slices.Equal(prev, asked) {
					t.Fatalf("seed %d: order %v, then %v: not reproducible", seed, prev, asked)
				}
				orders[seed] = asked
			}
			distinct := map[string]bool{}
			for _, o := range orders {
				distinct[peerList(o)] = true
			}
			if len(distinct) < 2 {
				t.Fatalf("seeds 1 to 5 all gave the order %v: the order does not depend on Config.Seed", orders[1])
			}
		})
	}
}

func peerList(ps []peer.ID) string {
	s := ""
	for _, p := range ps {
		s += string(p) + ","
	}
	return s
}

// TestRetrieverAttemptTimeouts checks that attempt k waits
// AttemptTimeout·2^(k-1), at most MaxAttemptTimeout and never past the
// deadline, and which error ends a retrieval from silent peers.
func TestRetrieverAttemptTimeouts(t *testing.T) {
	s := time.Second
	tests := []struct {
		name     string
		deadline time.Duration
		want     []time.Duration // each attempt's timeout
		wantErr  error
	}{
		{"deadline cuts the fourth attempt", 10 * s, []time.Duration{1 * s, 2 * s, 4 * s, 3 * s}, syncer.ErrRoundDeadlineReached},
		{"deadline on an attempt boundary", 7 * s, []time.Duration{1 * s, 2 * s, 4 * s}, syncer.ErrRoundDeadlineReached},
		{"deadline within the first attempt", s / 2, []time.Duration{s / 2}, syncer.ErrRoundDeadlineReached},
		{"peers run out first", time.Minute, []time.Duration{1 * s, 2 * s, 4 * s, 4 * s, 4 * s, 4 * s, 4 * s}, syncer.ErrAllPeersFailed},
		{"no deadline", 0, []time.Duration{1 * s, 2 * s, 4 * s, 4 * s, 4 * s, 4 * s, 4 * s}, syncer.ErrAllPeersFailed},
	}
	v, nodes := buildChain(7, 3, 1, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newWorldFrom(t, v, nodes)
				var log askLog
				answerAll(w, &log, silent)
				cfg := syncer.SeedConfig()
				cfg.AttemptTimeout, cfg.MaxAttemptTimeout = s, 4*s
				r, _ := newRetriever(w, "client", cfg)
				ctx := context.Background()
				start := time.Now()
				if tt.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.deadline)
					defer cancel()
				}
				qc := nodes[2].QC
				_, err := r.RetrieveBlocksForQC(ctx, &qc, 1, chain.Hash{}, w.author(), nil)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err %v, want %v", err, tt.wantErr)
				}
				var sum time.Duration
				for _, d := range tt.want {
					sum += d
				}
				if took := time.Since(start); took != sum {
					t.Errorf("returned after %v, want %v", took, sum)
				}
				log.mu.Lock()
				defer log.mu.Unlock()
				if len(log.at) != len(tt.want) {
					t.Fatalf("%d attempts, want %d", len(log.at), len(tt.want))
				}
				for i, at := range log.at {
					if got := log.deadlines[i].Sub(at); got != tt.want[i] {
						t.Errorf("attempt %d: timeout %v, want %v", i+1, got, tt.want[i])
					}
					if tt.deadline > 0 && log.deadlines[i].After(start.Add(tt.deadline)) {
						t.Errorf("attempt %d: deadline past the sync's", i+1)
					}
				}
			})
		})
	}
}

// TestRetrieverFastFailures: when every candidate refuses at once the
// retrieval fails with ErrAllPeersFailed without waiting, having asked
// each once.
func TestRetrieverFastFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 4, 3, 1)
		var log askLog
		answerAll(w, &log, func(_ context.Context, p peer.ID, _ func() *protocol.BlockResponse) (*protocol.BlockResponse, error) {
			if p == w.id(1) {
				return nil, syncertest.ErrUnreachable
			}
			return &protocol.BlockResponse{Status: protocol.StatusIDNotFound}, nil
		})
		r, scores := newRetriever(w, "client", syncer.SeedConfig())
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		qc := w.nodes[2].QC
		_, err := r.RetrieveBlocksForQC(ctx, &qc, 1, chain.Hash{}, w.author(), nil)
		if !errors.Is(err, syncer.ErrAllPeersFailed) {
			t.Fatalf("err %v, want ErrAllPeersFailed", err)
		}
		if took := time.Since(start); took != 0 {
			t.Errorf("took %v of virtual time, want 0", took)
		}
		if got := len(log.asked()); got != 4 {
			t.Errorf("asked %d peers, want 4", got)
		}
		if got := scores.Count(w.id(1), syncer.OutcomeTimeout); got != 1 {
			t.Errorf("unreachable peer: %d timeouts recorded, want 1", got)
		}
		if got := scores.Count(w.id(0), syncer.OutcomeUnavailable); got != 1 {
			t.Errorf("refusing peer: %d unavailable recorded, want 1", got)
		}
	})
}

// TestRetrieverCancel: cancelling the context ends a retrieval with the
// context's error, not a peer failure.
func TestRetrieverCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 4, 3, 1)
		var log askLog
		ctx, cancel := context.WithCancel(context.Background())
		answerAll(w, &log, func(ctx context.Context, p peer.ID, h func() *protocol.BlockResponse) (*protocol.BlockResponse, error) {
			cancel()
			return silent(ctx, p, h)
		})
		r, _ := newRetriever(w, "client", syncer.DefaultConfig())
		qc := w.nodes[2].QC
		_, err := r.RetrieveBlocksForQC(ctx, &qc, 1, chain.Hash{}, w.author(), nil)
		if !errors.Is(err, context.Canceled) || errors.Is(err, syncer.ErrAllPeersFailed) || errors.Is(err, syncer.ErrRoundDeadlineReached) {
			t.Fatalf("err %v, want context.Canceled only", err)
		}
	})
}

// TestRetrieverHedging: with a slow preferred peer the next candidate is
// asked after HedgeDelay, its valid answer wins, and the slow attempt's
// context is cancelled.
func TestRetrieverHedging(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 4, 10, 1)
		var log askLog
		var slowCancelled atomic.Bool
		answerAll(w, &log, func(ctx context.Context, p peer.ID, honest func() *protocol.BlockResponse) (*protocol.BlockResponse, error) {
			if p != w.author() {
				time.Sleep(100 * time.Millisecond) // virtual time
				return honest(), nil
			}
			select {
			case <-ctx.Done():
				slowCancelled.Store(errors.Is(ctx.Err(), context.Canceled))
				return nil, ctx.Err()
			case <-time.After(1500 * time.Millisecond):
				return honest(), nil
			}
		})
		cfg := syncer.DefaultConfig()
		r, scores := newRetriever(w, "client", cfg)
		start := time.Now()
		qc := w.nodes[9].QC
		blocks, err := r.RetrieveBlocksForQC(context.Background(), &qc, 4, chain.Hash{}, w.author(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(blocks) != 4 || blocks[0].ID != w.nodes[9].Block.ID {
			t.Fatalf("got %d blocks", len(blocks))
		}
		if took := time.Since(start); took != cfg.HedgeDelay+100*time.Millisecond {
			t.Errorf("took %v, want HedgeDelay + the second peer's 100ms", took)
		}
		synctest.Wait()
		log.mu.Lock()
		if len(log.peers) != 2 || log.peers[0] != w.author() || log.at[1].Sub(log.at[0]) != cfg.HedgeDelay {
			t.Errorf("asked %v at %v, want the author then one more after HedgeDelay", log.peers, log.at)
		}
		hedged := log.peers[len(log.peers)-1]
		log.mu.Unlock()
		if !slowCancelled.Load() {
			t.Error("the slow attempt's context was not cancelled")
		}
		if scores.Count(hedged, syncer.OutcomeValid) != 1 {
			t.Error("the winning peer's valid answer was not recorded")
		}
	})
}

// TestRetrieverHedgeWaitsForTransfer: once a peer's rate is measured, the
// hedge also waits the time that peer takes to send what was asked, so a
// slow link's answer on its way is not asked again of another peer; before
// that, the hedge fires after HedgeDelay alone.
func TestRetrieverHedgeWaitsForTransfer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 4, 10, 1000) // blocks of 64 KB: 4 of them over 2 s are far above the rate floor
		var log askLog
		answerAll(w, &log, func(ctx context.Context, p peer.ID, honest func() *protocol.BlockResponse) (*protocol.BlockResponse, error) {
			d := 2 * time.Second // the author's slow link
			if p != w.author() {
				d = time.Minute
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(d):
				return honest(), nil
			}
		})
		cfg := syncer.DefaultConfig()
		r, _ := newRetriever(w, "client", cfg)
		qc := w.nodes[9].QC
		asked := func() []peer.ID {
			log.mu.Lock()
			defer log.mu.Unlock()
			out := slices.Clone(log.peers)
			log.peers = nil
			return out
		}
		for i, wantAsked := range []int{cfg.MaxParallelAttempts, 1} {
			if _, err := r.RetrieveBlocksForQC(context.Background(), &qc, 4, chain.Hash{}, w.author(), nil); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			if got := asked(); len(got) != wantAsked || got[0] != w.author() {
				t.Errorf("retrieval %d asked %v, want the author first and %d peers in all", i+1, got, wantAsked)
			}
		}
	})
}

// TestRetrieverMaxParallelAttempts: however slow the peers, at most
// MaxParallelAttempts requests of one retrieval are in flight.
func TestRetrieverMaxParallelAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 7, 3, 1)
		var inFlight, maxInFlight atomic.Int32
		var log askLog
		answerAll(w, &log, func(ctx context.Context, p peer.ID, h func() *protocol.BlockResponse) (*protocol.BlockResponse, error) {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for {
				m := maxInFlight.Load()
				if n <= m || maxInFlight.CompareAndSwap(m, n) {
					break
				}
			}
			return silent(ctx, p, h)
		})
		cfg := syncer.DefaultConfig()
		r, _ := newRetriever(w, "client", cfg)
		qc := w.nodes[2].QC
		_, err := r.RetrieveBlocksForQC(context.Background(), &qc, 1, chain.Hash{}, w.author(), nil)
		if !errors.Is(err, syncer.ErrAllPeersFailed) {
			t.Fatalf("err %v, want ErrAllPeersFailed", err)
		}
		if got := int(maxInFlight.Load()); got != cfg.MaxParallelAttempts {
			t.Errorf("%d attempts in flight at most, want %d", got, cfg.MaxParallelAttempts)
		}
		if got := len(log.asked()); got != 7 {
			t.Errorf("asked %d peers, want all 7", got)
		}
	})
}

// TestRetrieverFallbackToPeers: connected peers that did not sign are asked
// only once every signer failed, and only with FallbackToPeers.
func TestRetrieverFallbackToPeers(t *testing.T) {
	v, nodes := buildChain(4, 5, 1, []int{0, 1, 2})
	for _, fallback := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			w := newWorldFrom(t, v, nodes)
			w.net.Add("full-node", w.honestPeer())
			var log askLog
			signers := map[peer.ID]bool{w.id(0): true, w.id(1): true, w.id(2): true}
			answerAll(w, &log, func(ctx context.Context, p peer.ID, honest func() *protocol.BlockResponse) (*protocol.BlockResponse, error) {
				if signers[p] {
					return &protocol.BlockResponse{Status: protocol.StatusBusy}, nil
				}
				return honest(), nil
			})
			cfg := syncer.DefaultConfig()
			cfg.FallbackToPeers = fallback
			r, _ := newRetriever(w, "client", cfg)
			qc := nodes[4].QC
			blocks, err := r.RetrieveBlocksForQC(context.Background(), &qc, 2, chain.Hash{}, w.author(), nil)
			asked := log.asked()
			if !fallback {
				if !errors.Is(err, syncer.ErrAllPeersFailed) {
					t.Fatalf("without fallback: err %v, want ErrAllPeersFailed", err)
				}
				if len(asked) != 3 {
					t.Fatalf("without fallback: asked %v, want the 3 signers only", asked)
				}
				return
			}
			if err != nil || len(blocks) != 2 {
				t.Fatalf("with fallback: %d blocks, err %v", len(blocks), err)
			}
			if len(asked) != 4 {
				t.Fatalf("with fallback: asked %v, want the 3 signers then one other peer", asked)
			}
			for i, p := range asked {
				if signers[p] != (i < 3) {
					t.Fatalf("with fallback: asked %v: signers must come first", asked)
				}
			}
		})
	}
}
