package consensus_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pnode/p2pnode/consensus"
)

// Twins-style safety: validator 0 is Byzantine and runs as two instances
// with its key (twins), each with its own state and mempool. The twins
// propose two different blocks when they lead a round and vote twice in a
// round. A seeded scenario splits the five instances into one to three
// partitions anew every twinsPhase (messages cross only within a
// partition), with round timeouts short enough that rounds pass under
// partitions of all shapes, until twinsHeal. Honest validators must never
// commit conflicting blocks, and must commit again once the partitions end.
const (
	twinsPhase = 250 * time.Millisecond
	twinsHeal  = 12 * time.Second
)

func TestTwinsSafety(t *testing.T) {
	seeds := 50
	if testing.Short() || raceEnabled {
		seeds = 8
	}
	var proposals, votes, ran int
	for seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p, v := runTwins(t, uint64(seed))
				ran++
				proposals += p
				votes += v
			})
		})
	}
	t.Logf("%d seeds: the twins equivocated in %d rounds with proposals and %d rounds with votes", ran, proposals, votes)
	if ran > 0 && (proposals == 0 || votes == 0) {
		t.Fatalf("the scenarios never made the Byzantine validator equivocate (proposals %d, votes %d)", proposals, votes)
	}
}

func runTwins(t *testing.T, seed uint64) (proposals, votes int) {
	c := newCluster(t, clusterOpts{seed: 100 + seed, twins: true, minDelay: time.Millisecond, maxDelay: 20 * time.Millisecond,
		cfg: func(cfg *consensus.Config) {
			// Short timeouts: many rounds, each under its own partition.
			cfg.RoundTimeout, cfg.MaxRoundTimeout = 100*time.Millisecond, 400*time.Millisecond
		}})
	rng := rand.New(rand.NewPCG(seed, 0x7477696e73))
	groups := make([][]int, twinsHeal/twinsPhase+1)
	for r := range groups {
		k := 1 + rng.IntN(3) // one to three partitions
		groups[r] = make([]int, len(c.insts))
		for i := range groups[r] {
			groups[r][i] = rng.IntN(k)
		}
	}
	heal := c.began.Add(twinsHeal)
	c.router.setBlocked(func(from, to *instance, _ uint64) bool {
		now := time.Now()
		if !now.Before(heal) {
			return false
		}
		g := groups[now.Sub(c.began)/twinsPhase]
		return g[from.idx] != g[to.idx]
	})
	c.startAll()
	honest := c.honest()
	pass(twinsHeal)
	healed := c.minCommitted(honest)
	if !waitFor(3*time.Minute, func() bool { return c.minCommitted(honest) >= healed+10 }) {
		c.logStatus(t)
		t.Fatalf("seed %d: honest validators committed round %d after the heal, want %d", seed, c.minCommitted(honest), healed+10)
	}
	c.stopAll()
	c.checkSafety()
	t.Logf("at the heal: committed round %d", healed)
	c.logStatus(t)
	return c.router.equivocations()
}
