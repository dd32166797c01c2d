package syncer_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/syncer"
)

// TestScoresDecay: penalties halve every half-life of (virtual) time.
func TestScoresDecay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const halfLife = time.Minute
		s := syncer.NewScores(halfLife)
		s.Record("liar", syncer.OutcomeInvalid, 0)
		s.Record("slow", syncer.OutcomeTimeout, 0)
		for _, tt := range []struct {
			after      time.Duration
			liar, slow float64
		}{
			{0, -100, -10},
			{halfLife, -50, -5},
			{halfLife, -25, -2.5},
			{8 * halfLife, -25.0 / 256, -2.5 / 256},
		} {
			time.Sleep(tt.after) // virtual time
			if got := s.Score("liar"); math.Abs(got-tt.liar) > 1e-9 {
				t.Errorf("liar: score %v, want %v", got, tt.liar)
			}
			if got := s.Score("slow"); math.Abs(got-tt.slow) > 1e-9 {
				t.Errorf("slow: score %v, want %v", got, tt.slow)
			}
		}
		if got := s.Score("unknown"); got != 0 {
			t.Errorf("unknown peer scores %v, want 0", got)
		}
		if s.Count("liar", syncer.OutcomeInvalid) != 1 || s.Count("liar", syncer.OutcomeValid) != 0 {
			t.Error("counts do not decay")
		}
	})
}

// TestScoresRank: a fast honest peer before an unknown one, before a slow
// honest one, before one that timed out, before a liar; ties are broken by
// the random source.
func TestScoresRank(t *testing.T) {
	s := syncer.NewScores(time.Minute)
	s.Record("fast", syncer.OutcomeValid, 10*time.Millisecond)
	s.Record("slow", syncer.OutcomeValid, 900*time.Millisecond)
	s.Record("silent", syncer.OutcomeTimeout, 0)
	s.Record("liar", syncer.OutcomeValid, time.Millisecond)
	s.Record("liar", syncer.OutcomeInvalid, 0)
	want := []peer.ID{"fast", "unknown", "slow", "silent", "liar"}
	for seed := range uint64(5) {
		in := slices.Clone(want)
		slices.Reverse(in)
		if got := s.Rank(in, rand.New(rand.NewPCG(seed, 0))); !slices.Equal(got, want) {
			t.Fatalf("seed %d: rank %v, want %v", seed, got, want)
		}
	}
	ties := []peer.ID{"a", "b", "c", "d", "e", "f"}
	orders := map[string]bool{}
	for seed := range uint64(5) {
		orders[peerList(s.Rank(ties, rand.New(rand.NewPCG(seed, 0))))] = true
	}
	if len(orders) < 2 {
		t.Error("ties are not shuffled")
	}
}

// TestRankedRetrievalPrefersFastPeers: with RankPeers, after one sync has
// measured them, a later retrieval asks the fastest signer right after the
// preferred peer and never starts with a liar.
func TestRankedRetrievalPrefersFastPeers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 4, 10, 1)
		lat := []time.Duration{0, 50 * time.Millisecond, 300 * time.Millisecond, 900 * time.Millisecond}
		for i, d := range lat {
			w.net.Peer(w.id(i)).Latency = d
		}
		cfg := syncer.DefaultConfig()
		cfg.HedgeDelay = 0 // one peer at a time, so that every latency is measured
		r, scores := newRetriever(w, "client", cfg)
		// Measure each peer once, as the preferred peer.
		for i := range lat {
			qc := w.nodes[i].QC
			if _, err := r.RetrieveBlocksForQC(testCtx(t), &qc, 1, [32]byte{}, w.id(i), nil); err != nil {
				t.Fatal(err)
			}
		}
		if !(scores.Score(w.id(1)) > scores.Score(w.id(2)) && scores.Score(w.id(2)) > scores.Score(w.id(3))) {
			t.Fatalf("scores %v %v %v do not follow latency", scores.Score(w.id(1)), scores.Score(w.id(2)), scores.Score(w.id(3)))
		}
		scores.Record(w.id(1), syncer.OutcomeInvalid, 0) // the fastest lied once
		var log askLog
		answerAll(w, &log, busy)
		qc := w.nodes[9].QC
		if _, err := r.RetrieveBlocksForQC(testCtx(t), &qc, 1, [32]byte{}, w.id(0), nil); !errors.Is(err, syncer.ErrAllPeersFailed) {
			t.Fatalf("err %v, want ErrAllPeersFailed", err)
		}
		want := w.peerIDs(0, 2, 3, 1)
		if got := log.asked(); !slices.Equal(got, want) {
			t.Fatalf("asked %v, want %v", got, want)
		}
	})
}
