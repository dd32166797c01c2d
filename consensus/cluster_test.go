package consensus_test

import (
	"github.com/p2pnode/p2pnode/consensus"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

func TestCommitLongChain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, clusterOpts{seed: 1, minDelay: 2 * time.Millisecond, maxDelay: 30 * time.Millisecond})
		c.startAll()
		if !waitFor(5*time.Minute, func() bool { return c.minCommitted(c.insts) >= 120 }) {
			t.Fatalf("committed round %d after 5 minutes, want 120", c.minCommitted(c.insts))
		}
		c.stopAll()
		c.checkSafety()
		c.logStatus(t)
		for _, in := range c.insts {
			s := c.status(in)
			if s.Timeouts != 0 {
				t.Errorf("node %d timed out %d times on a timely network", in.idx, s.Timeouts)
			}
			if s.LastVotedRound < 120 || s.Proposals == 0 {
				t.Errorf("node %d: %+v", in.idx, s)
			}
		}
		// With no timeouts, every round has a block and a QC: the committed
		// chain is the rounds 1, 2, 3, … with nothing skipped.
		log := c.insts[0].commits.snapshot()
		for i, b := range log {
			if b.Round != uint64(i+1) {
				t.Fatalf("commit %d is round %d", i, b.Round)
			}
		}
		// Every committed block after the first few carries transactions.
		bs := c.insts[1].bs.Load()
		if v := bs.Root().Info.Version; v < 2*100 {
			t.Fatalf("committed version %d, want ≥ 200 transactions", v)
		}
	})
}

func TestStoppedValidatorReturns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, clusterOpts{seed: 2, minDelay: 2 * time.Millisecond, maxDelay: 20 * time.Millisecond})
		c.startAll()
		others, gone := c.insts[:3], c.insts[3]
		if !waitFor(time.Minute, func() bool { return c.minCommitted(c.insts) >= 20 }) {
			t.Fatal("no progress before the stop")
		}
		c.stop(gone)
		stoppedAt := gone.bs.Load().Root().Info.Round
		// The others commit on; the rounds the stopped validator leads end
		// in timeouts.
		if !waitFor(5*time.Minute, func() bool { return c.minCommitted(others) >= stoppedAt+40 }) {
			t.Fatalf("the others committed round %d, want %d", c.minCommitted(others), stoppedAt+40)
		}
		if s := c.status(others[0]); s.Timeouts == 0 {
			t.Fatalf("no timeouts while a leader was down: %+v", s)
		}
		returnRound := c.status(others[0]).Round
		fetched := gone.sync.Stats().BlocksFetched
		c.start(gone)
		target := c.minCommitted(others) + 20
		if !waitFor(5*time.Minute, func() bool {
			return c.minCommitted(c.insts) >= target && c.status(gone).LastVotedRound > returnRound+8
		}) {
			t.Fatalf("returned validator: %+v, others committed %d", c.status(gone), c.minCommitted(others))
		}
		if gone.sync.Stats().BlocksFetched == fetched {
			t.Fatal("the returned validator caught up without the syncer")
		}
		// Its signature is back in the QCs of the blocks committed since.
		signed := 0
		for _, b := range gone.commits.snapshot() {
			if b.Round <= returnRound+1 {
				continue
			}
			blk, ok := others[0].bs.Load().GetBlock(b.ID)
			if !ok {
				t.Fatalf("committed block %s missing", b.ID.Short())
			}
			if slices.Contains(blk.QC().Signers(), gone.id) {
				signed++
			}
		}
		if signed == 0 {
			t.Fatal("no QC since the return carries the returned validator's signature")
		}
		c.stopAll()
		c.checkSafety()
		c.logStatus(t)
	})
}

func TestPartitionLossAndDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, clusterOpts{seed: 3, minDelay: time.Millisecond, maxDelay: 80 * time.Millisecond, drop: 0.05})
		cut := c.insts[2]
		from, until := c.began.Add(3*time.Second), c.began.Add(30*time.Second)
		c.router.setBlocked(func(a, b *instance, _ uint64) bool {
			now := time.Now()
			return now.After(from) && now.Before(until) && (a == cut) != (b == cut)
		})
		c.startAll()
		others := []*instance{c.insts[0], c.insts[1], c.insts[3]}
		pass(time.Until(until))
		if c.minCommitted(others) < 15 {
			t.Fatalf("the majority committed only round %d during the partition", c.minCommitted(others))
		}
		cutAt, healRound := cut.bs.Load().Root().Info.Round, c.status(c.insts[0]).Round
		if cutAt >= c.minCommitted(others) {
			t.Fatalf("the isolated node committed round %d, the others %d", cutAt, c.minCommitted(others))
		}
		target := c.minCommitted(others) + 20
		if !waitFor(5*time.Minute, func() bool {
			return c.minCommitted(c.insts) >= target && c.status(cut).LastVotedRound > healRound+4
		}) {
			t.Fatalf("after the heal: isolated node %+v, others committed %d", c.status(cut), c.minCommitted(others))
		}
		c.stopAll()
		c.checkSafety()
		c.logStatus(t)
	})
}

func TestRestartAllFromStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, clusterOpts{seed: 4, disk: true, minDelay: 2 * time.Millisecond, maxDelay: 20 * time.Millisecond})
		c.startAll()
		if !waitFor(time.Minute, func() bool { return c.minCommitted(c.insts) >= 25 }) {
			t.Fatal("no progress before the restart")
		}
		c.stopAll()
		before := make([]consensus.Status, len(c.insts))
		for i, in := range c.insts {
			before[i] = c.status(in)
			if err := in.st.Close(); err != nil {
				t.Fatal(err)
			}
		}
		for _, in := range c.insts {
			c.open(in)
		}
		for _, in := range c.insts {
			c.connect(in)
		}
		c.startAll()
		for i, in := range c.insts {
			s := c.status(in)
			if s.LastVotedRound < before[i].LastVotedRound || s.CommittedRound < before[i].CommittedRound {
				t.Fatalf("node %d restarted with %+v, stopped with %+v", i, s, before[i])
			}
		}
		target := c.minCommitted(c.insts) + 30
		if !waitFor(2*time.Minute, func() bool { return c.minCommitted(c.insts) >= target }) {
			t.Fatalf("committed round %d after the restart, want %d", c.minCommitted(c.insts), target)
		}
		c.stopAll()
		c.checkSafety()
		c.logStatus(t)
	})
}
