package consensus_test

import (
	"testing"
	"time"

	"github.com/p2pnode/p2pnode/consensus"
)

// BenchmarkCommit runs 4 validators in-process in real time, with zero
// network delay (every message still crosses the wire codec and every
// signature is checked), until validator 0 has committed b.N blocks of 2
// transactions. It reports committed blocks per second and the mean round
// latency.
func BenchmarkCommit(b *testing.B) {
	c := newCluster(b, clusterOpts{seed: 9, cfg: func(cfg *consensus.Config) {
		cfg.RoundTimeout, cfg.MaxRoundTimeout = 5*time.Second, 10*time.Second
	}})
	done := c.insts[0].commits.expect(b.N)
	b.ResetTimer()
	began := time.Now()
	c.startAll()
	<-done
	took := time.Since(began)
	b.StopTimer()
	st := c.status(c.insts[0])
	c.stopAll()
	c.checkSafety()
	b.ReportMetric(float64(b.N)/took.Seconds(), "blocks/s")
	b.ReportMetric(float64(took.Microseconds())/1000/float64(st.Round), "ms/round")
	if st.Timeouts > 0 {
		b.Logf("%d timeouts", st.Timeouts)
	}
}
