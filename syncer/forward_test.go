package syncer_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/protocol"
	"github.com/p2pnode/p2pnode/syncer"
)

// forwardConfig fetches block by block (no fast-forward) with the forward
// phase on.
func forwardConfig() syncer.Config {
	c := syncer.DefaultConfig()
	c.FastForwardRounds = 1 << 30
	c.HedgeDelay = 0
	return c
}

// requests sums the peers' request counters.
func (w *world) requests() (blocks, committed int64) {
	for _, id := range w.net.Peers() {
		p := w.net.Peer(id)
		blocks += p.BlockRequests.Load()
		committed += p.CommittedRequests.Load()
	}
	return blocks, committed
}

func TestForwardCatchesUp(t *testing.T) {
	w := newWorld(t, 4, 2000, 1)
	cfg := forwardConfig()
	c, m := w.client(t, cfg)
	w.syncAll(t, c, m)
	blocks, committed := w.requests()
	st := m.Stats()
	t.Logf("block requests %d, committed requests %d, stats %+v", blocks, committed, st)
	if committed < 2000/int64(cfg.BlocksPerRequest) {
		t.Errorf("%d committed requests, want at least %d", committed, 2000/cfg.BlocksPerRequest)
	}
	if blocks > 4 {
		t.Errorf("%d block requests, want at most 4 (the tail)", blocks)
	}
	if st.ForwardSyncs != 1 || st.ForwardRelinks != 0 || st.ForwardDropped != 0 {
		t.Errorf("stats %+v, want one forward fetch with no relink and no drop", st)
	}
	if st.ForwardPeakWindows > 2*uint64(cfg.ForwardWindows) {
		t.Errorf("%d windows held at once, limit %d", st.ForwardPeakWindows, 2*cfg.ForwardWindows)
	}
}

// TestForwardBoundedWindows checks that at most ForwardWindows requests
// are ever in flight, and twice as many windows held, over a gap of many
// times that many windows.
func TestForwardBoundedWindows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 4, 3000, 0)
		cfg := forwardConfig()
		cfg.BlocksPerRequest = 16
		cfg.ForwardWindows = 3
		var mu sync.Mutex
		inFlight, peak := 0, 0
		for _, id := range w.net.Peers() {
			p := w.net.Peer(id)
			p.Latency = 5 * time.Millisecond
			p.OnCommitted = func(ctx context.Context, req protocol.CommittedRequest, honest func() *protocol.CommittedResponse) (*protocol.CommittedResponse, error) {
				mu.Lock()
				inFlight++
				peak = max(peak, inFlight)
				mu.Unlock()
				defer func() {
					mu.Lock()
					inFlight--
					mu.Unlock()
				}()
				if err := sleep(ctx, 5*time.Millisecond); err != nil {
					return nil, err
				}
				return honest(), nil
			}
		}
		c, m := w.client(t, cfg)
		if err := m.SyncTo(context.Background(), w.syncInfo(), w.author()); err != nil {
			t.Fatal(err)
		}
		w.checkSynced(t, c)
		mu.Lock()
		defer mu.Unlock()
		if st := m.Stats(); peak > cfg.ForwardWindows || st.ForwardPeakWindows > 2*uint64(cfg.ForwardWindows) {
			t.Fatalf("%d requests in flight, %d windows held; limits %d and %d", peak, st.ForwardPeakWindows, cfg.ForwardWindows, 2*cfg.ForwardWindows)
		}
		if peak < 2 {
			t.Fatalf("at most %d request in flight: the windows are not fetched in parallel", peak)
		}
	})
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type committedHook = func(ctx context.Context, req protocol.CommittedRequest, honest func() *protocol.CommittedResponse) (*protocol.CommittedResponse, error)

func TestForwardFaultyPeer(t *testing.T) {
	const n = 800
	v := chaintest.NewValidators(11, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 1, TxSize: 64, Seed: 3})
	nodes := b.Extend(b.Genesis(), n)
	// sibling returns a certified fork block: a sibling of the block of
	// that round.
	// The builder is not safe for concurrent use: the hooks take turns.
	var builderMu sync.Mutex
	sibling := func(round uint64) *chain.Block {
		builderMu.Lock()
		defer builderMu.Unlock()
		return b.Child(nodes[round-2], round).Block
	}

	tests := []struct {
		name    string
		hook    committedHook
		outcome syncer.Outcome // that the liar's score must show
		legal   bool           // nothing to penalise
	}{
		{"invalid signature", func(_ context.Context, _ protocol.CommittedRequest, honest func() *protocol.CommittedResponse) (*protocol.CommittedResponse, error) {
			resp := honest()
			if len(resp.Blocks) > 2 {
				resp.Blocks[1] = chaintest.Corrupt(resp.Blocks[1], func(b *chain.Block) { b.Data.TimestampUsecs++ })
			}
			return resp, nil
		}, syncer.OutcomeInvalid, false},
		{"foreign certified block", func(_ context.Context, _ protocol.CommittedRequest, honest func() *protocol.CommittedResponse) (*protocol.CommittedResponse, error) {
			resp := honest()
			if len(resp.Blocks) > 2 {
				resp.Blocks[1] = sibling(resp.Blocks[1].Round())
			}
			return resp, nil
		}, syncer.OutcomeInvalid, false},
		{"fork at the end of the window", func(_ context.Context, _ protocol.CommittedRequest, honest func() *protocol.CommittedResponse) (*protocol.CommittedResponse, error) {
			resp := honest()
			if k := len(resp.Blocks); k > 2 {
				resp.Blocks[k-1] = sibling(resp.Blocks[k-1].Round())
			}
			return resp, nil
		}, syncer.OutcomeValid, true},
		{"truncated window", func(_ context.Context, _ protocol.CommittedRequest, honest func() *protocol.CommittedResponse) (*protocol.CommittedResponse, error) {
			resp := honest()
			resp.Blocks = resp.Blocks[:len(resp.Blocks)/2]
			return resp, nil
		}, syncer.OutcomeValid, true},
		{"empty window", func(_ context.Context, _ protocol.CommittedRequest, _ func() *protocol.CommittedResponse) (*protocol.CommittedResponse, error) {
			return &protocol.CommittedResponse{Status: protocol.StatusSucceeded}, nil
		}, syncer.OutcomeValid, true},
		{"silent", func(ctx context.Context, _ protocol.CommittedRequest, _ func() *protocol.CommittedResponse) (*protocol.CommittedResponse, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}, syncer.OutcomeTimeout, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newWorldFrom(t, v, nodes)
				liar := w.author()
				w.net.Peer(liar).OnCommitted = tt.hook
				c, m := w.client(t, forwardConfig())
				if err := m.SyncTo(context.Background(), w.syncInfo(), liar); err != nil {
					t.Fatal(err)
				}
				w.checkSynced(t, c)
				st := m.Stats()
				t.Logf("stats %+v", st)
				if st.ForwardSyncs != 1 || st.ForwardWindows == 0 {
					t.Fatalf("stats %+v: the forward phase did not run", st)
				}
				if !tt.legal && m.Scores().Count(liar, tt.outcome) == 0 {
					t.Fatalf("liar's score shows no %s outcome", tt.outcome)
				}
				if !tt.legal && m.Scores().Score(liar) >= m.Scores().Score(w.id(1)) {
					t.Fatalf("liar scores %.1f, an honest peer %.1f", m.Scores().Score(liar), m.Scores().Score(w.id(1)))
				}
			})
		})
	}
}

// TestForwardNoServer checks that a sync whose peers do not serve
// committed ranges falls back to the walk.
func TestForwardNoServer(t *testing.T) {
	w := newWorld(t, 4, 600, 1)
	for _, id := range w.net.Peers() {
		w.net.Peer(id).Ledger = nil
	}
	c, m := w.client(t, forwardConfig())
	if err := m.SyncTo(context.Background(), w.syncInfo(), w.author()); err != nil {
		t.Fatal(err)
	}
	w.checkSynced(t, c)
	if st := m.Stats(); st.ForwardSyncs != 1 || st.ForwardWindows != 0 {
		t.Fatalf("stats %+v, want a forward fetch that inserted nothing", st)
	}
}

// TestForwardDeadline checks that a forward fetch cut by the deadline
// leaves a consistent state that a later sync completes.
func TestForwardDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 4, 1500, 0)
		for _, id := range w.net.Peers() {
			w.net.Peer(id).Latency = 10 * time.Millisecond
		}
		c, m := w.client(t, forwardConfig())
		ctx, cancel := context.WithTimeout(context.Background(), 25*time.Millisecond)
		err := m.SyncTo(ctx, w.syncInfo(), w.author())
		cancel()
		if !errors.Is(err, syncer.ErrRoundDeadlineReached) && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("first sync: %v, want the deadline", err)
		}
		root := c.store.Root().Info.Round
		if root == 0 {
			t.Fatal("the first sync committed nothing")
		}
		if err := m.SyncTo(context.Background(), w.syncInfo(), w.id(1)); err != nil {
			t.Fatal(err)
		}
		w.checkSynced(t, c)
	})
}

// TestForwardRoutesAroundPrunedPeers: peers that keep no history below
// round 400 answer pruned for the windows below it; the fetch asks the
// others for those, takes the later windows from every peer, and holds
// nothing against the pruned ones.
func TestForwardRoutesAroundPrunedPeers(t *testing.T) {
	w := newWorld(t, 4, 800, 1)
	var prunedAnswers, laterServed [4]int64
	var mu sync.Mutex
	for i := 1; i < 4; i++ { // all but the author prune
		p := w.net.Peer(w.id(i))
		p.OnCommitted = func(_ context.Context, req protocol.CommittedRequest, honest func() *protocol.CommittedResponse) (*protocol.CommittedResponse, error) {
			mu.Lock()
			defer mu.Unlock()
			if req.FromRound < 400 {
				prunedAnswers[i]++
				return &protocol.CommittedResponse{Status: protocol.StatusPruned}, nil
			}
			laterServed[i]++
			return honest(), nil
		}
	}
	cfg := forwardConfig()
	c, m := w.client(t, cfg)
	w.syncAll(t, c, m)
	mu.Lock()
	defer mu.Unlock()
	var pruned, later int64
	for i := 1; i < 4; i++ {
		pruned += prunedAnswers[i]
		later += laterServed[i]
		sc := m.Scores()
		if n := sc.Count(w.id(i), syncer.OutcomeInvalid) + sc.Count(w.id(i), syncer.OutcomeTimeout); n != 0 {
			t.Errorf("pruned peer %d has %d invalid or timed-out outcomes: held against it", i, n)
		}
	}
	if pruned == 0 || later == 0 {
		t.Fatalf("pruned answers %d, later windows from pruning peers %d: want both", pruned, later)
	}
	if st := m.Stats(); st.ForwardDropped != 0 {
		t.Errorf("stats %+v: windows dropped", st)
	}
}

// TestServeCommittedPruned: a ledger that state-synced to round 20 and
// committed on from there answers pruned for a range from below its first
// archived block, and serves the rounds it archived.
func TestServeCommittedPruned(t *testing.T) {
	w := newWorld(t, 4, 40, 2)
	l, err := ledger.New(ledger.NewMemStorage(), w.v.Genesis)
	if err != nil {
		t.Fatal(err)
	}
	target := w.nodes[21].QC.LedgerInfo() // commits block 20 (round 20)
	for l.Version() < target.LedgerInfo.CommitInfo.Version {
		c, err := w.server.ledger.GetChunk(l.Version(), target.LedgerInfo.CommitInfo.Version, 16)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.ApplyChunk(c, target); err != nil {
			t.Fatal(err)
		}
	}
	if l.Committed() != target.LedgerInfo.CommitInfo {
		if err := l.FastForward(target); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range w.nodes[20:30] { // blocks of rounds 21 to 30
		if _, err := l.Execute(n.Block); err != nil {
			t.Fatal(err)
		}
		if err := l.Commit([]*chain.Block{n.Block}, w.nodes[n.Round()+1].QC.LedgerInfo()); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		from, to uint64
		want     protocol.Status
		blocks   int
	}{
		{0, 10, protocol.StatusPruned, 0},
		{5, 25, protocol.StatusPruned, 0},
		{21, 25, protocol.StatusSucceeded, 4},
		{25, 40, protocol.StatusNotEnoughBlocks, 6},
	} {
		req := protocol.CommittedRequest{FromRound: tt.from, ToRound: tt.to, MaxBlocks: 64}
		resp := syncer.ServeCommitted(l, &req, protocol.MaxCommittedResponseSize)
		if resp.Status != tt.want || len(resp.Blocks) != tt.blocks {
			t.Errorf("rounds %d to %d: %s with %d blocks, want %s with %d", tt.from, tt.to-1, resp.Status, len(resp.Blocks), tt.want, tt.blocks)
		}
	}
	// The full ledger serves the same ranges.
	req := protocol.CommittedRequest{FromRound: 0, ToRound: 10, MaxBlocks: 64}
	if resp := syncer.ServeCommitted(w.server.ledger, &req, protocol.MaxCommittedResponseSize); resp.Status != protocol.StatusSucceeded || len(resp.Blocks) != 9 {
		t.Errorf("full ledger: %s with %d blocks", resp.Status, len(resp.Blocks))
	}
}
