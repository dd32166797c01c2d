package node

import (
	"math"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/p2pnode/p2pnode/protocol"
	"github.com/p2pnode/p2pnode/syncer"
)

// metrics are the node's Prometheus metrics, in a registry of its own (so
// nodes in one process do not mix) that libp2p registers its metrics in
// too. Counters of the syncer and gauges of the chain are read from their
// owners at scrape time.
type metrics struct {
	reg     *prometheus.Registry
	syncs   *prometheus.CounterVec // by result
	gossip  *prometheus.CounterVec // by topic and result
	served  *prometheus.CounterVec // by protocol and status
	commits prometheus.Counter
}

func newMetrics() *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		reg: reg,
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "p2pnode_sync_results_total",
			Help: "Syncs run by the sync worker, by result (ok, deadline, all_peers_failed, too_far_behind, misbehaved, unavailable, canceled, error).",
		}, []string{"result"}),
		gossip: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "p2pnode_gossip_validation_total",
			Help: "Gossip messages from peers by topic and validation result (accept, reject, ignore).",
		}, []string{"topic", "result"}),
		served: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "p2pnode_served_requests_total",
			Help: "Block and chunk requests answered, by protocol and status.",
		}, []string{"protocol", "status"}),
		commits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "p2pnode_committed_blocks_total",
			Help: "Blocks committed by this node (by consensus or by sync).",
		}),
	}
	reg.MustRegister(m.syncs, m.gossip, m.served, m.commits,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) validation(topic string, r pubsub.ValidationResult) {
	name := "accept"
	switch r {
	case pubsub.ValidationReject:
		name = "reject"
	case pubsub.ValidationIgnore:
		name = "ignore"
	}
	m.gossip.WithLabelValues(topic, name).Inc()
}

func (m *metrics) servedRequest(proto string, st protocol.Status) {
	m.served.WithLabelValues(proto, st.String()).Inc()
}

// nodeCollector reads the syncer's counters, the peers' scores and the
// node's status when scraped.
type nodeCollector struct {
	n *Node

	syncRuns, syncFailures, fastForwards, blocksFetched, txsSynced, stateSyncSeconds *prometheus.Desc
	peerRequests, peerScore                                                          *prometheus.Desc
	peerRate, peerWindow, peerSlowTimeouts, peerStalls                               *prometheus.Desc
	round, qcRound, committedRound, committedVersion, peers, syncing                 *prometheus.Desc
	mempoolTxs, mempoolBytes                                                         *prometheus.Desc
	consensusProposals, consensusTimeouts, consensusDropped                          *prometheus.Desc
}

func newNodeCollector(n *Node) *nodeCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &nodeCollector{
		n:                  n,
		syncRuns:           d("p2pnode_sync_runs_total", "Syncs started (SyncTo calls)."),
		syncFailures:       d("p2pnode_sync_failures_total", "Syncs that failed, cancellations excluded."),
		fastForwards:       d("p2pnode_sync_fast_forwards_total", "State syncs started."),
		blocksFetched:      d("p2pnode_sync_blocks_fetched_total", "Verified blocks received from peers."),
		txsSynced:          d("p2pnode_state_sync_txs_total", "Transactions applied by state sync."),
		stateSyncSeconds:   d("p2pnode_state_sync_seconds_total", "Time spent in state sync."),
		peerRequests:       d("p2pnode_sync_peer_requests_total", "Retrieval requests to each connected peer by outcome (valid, unavailable, timeout, invalid).", "peer", "outcome"),
		peerScore:          d("p2pnode_sync_peer_score", "The syncer's score of each connected peer (penalties and latency; higher is better).", "peer"),
		peerRate:           d("p2pnode_sync_peer_rate_bytes", "The syncer's measured delivery rate of each connected peer, bytes per second.", "peer"),
		peerWindow:         d("p2pnode_sync_peer_window", "Requests a forward fetch may keep in flight at each connected peer (AIMD).", "peer"),
		peerSlowTimeouts:   d("p2pnode_sync_peer_slow_timeouts_total", "Timeouts of each connected peer while it delivered other answers: slowness, not penalised.", "peer"),
		peerStalls:         d("p2pnode_sync_peer_stalls_total", "Timeouts of each connected peer with nothing delivered meanwhile: penalised.", "peer"),
		round:              d("p2pnode_round", "The node's current round."),
		qcRound:            d("p2pnode_highest_qc_round", "Round of the highest quorum certificate."),
		committedRound:     d("p2pnode_committed_round", "Round of the last committed block."),
		committedVersion:   d("p2pnode_committed_version", "Transactions in the committed ledger."),
		peers:              d("p2pnode_peers", "Connected peers."),
		syncing:            d("p2pnode_syncing", "1 while a sync runs."),
		mempoolTxs:         d("p2pnode_mempool_txs", "Pending transactions."),
		mempoolBytes:       d("p2pnode_mempool_bytes", "Size of the pending transactions."),
		consensusProposals: d("p2pnode_consensus_proposals_total", "Blocks this validator proposed."),
		consensusTimeouts:  d("p2pnode_consensus_timeouts_total", "Rounds that timed out for this validator."),
		consensusDropped:   d("p2pnode_consensus_dropped_total", "Consensus messages dropped because a queue was full."),
	}
}

// Describe sends every descriptor.
func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.syncRuns, c.syncFailures, c.fastForwards, c.blocksFetched, c.txsSynced,
		c.stateSyncSeconds, c.peerRequests, c.peerScore, c.peerRate, c.peerWindow, c.peerSlowTimeouts, c.peerStalls, c.round, c.qcRound, c.committedRound, c.committedVersion,
		c.peers, c.syncing, c.mempoolTxs, c.mempoolBytes, c.consensusProposals, c.consensusTimeouts, c.consensusDropped} {
		ch <- d
	}
}

// Collect reads the current values.
func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	st := c.n.mgr.Stats()
	counter(c.syncRuns, float64(st.Runs))
	counter(c.syncFailures, float64(st.Failures))
	counter(c.fastForwards, float64(st.FastForwards))
	counter(c.blocksFetched, float64(st.BlocksFetched))
	counter(c.txsSynced, float64(st.TxsSynced))
	counter(c.stateSyncSeconds, st.StateSyncTime.Seconds())

	// Per-peer series only for connected peers, so the label set stays
	// bounded by the connection limits.
	scores := c.n.mgr.Scores()
	for _, p := range c.n.host.Network().Peers() {
		id := peer.ID(p).String()
		for _, o := range []syncer.Outcome{syncer.OutcomeValid, syncer.OutcomeUnavailable, syncer.OutcomeTimeout, syncer.OutcomeInvalid} {
			if n := scores.Count(p, o); n > 0 {
				counter(c.peerRequests, float64(n), id, o.String())
			}
		}
		if s := scores.Score(p); s != 0 && !math.IsNaN(s) && !math.IsInf(s, 0) {
			gauge(c.peerScore, s, id)
		}
		if f := c.n.mgr.Flow(p); f.Rate > 0 {
			gauge(c.peerRate, f.Rate, id)
			gauge(c.peerWindow, f.Window, id)
			counter(c.peerSlowTimeouts, float64(f.SlowTimeouts), id)
			counter(c.peerStalls, float64(f.Stalls), id)
		}
	}

	s := c.n.Status()
	gauge(c.round, float64(s.Round))
	gauge(c.qcRound, float64(s.HighestQCRound))
	gauge(c.committedRound, float64(s.CommittedRound))
	gauge(c.committedVersion, float64(s.CommittedVersion))
	gauge(c.peers, float64(s.Peers))
	syncing := 0.0
	if s.Syncing {
		syncing = 1
	}
	gauge(c.syncing, syncing)
	gauge(c.mempoolTxs, float64(c.n.mempool.Len()))
	gauge(c.mempoolBytes, float64(c.n.mempool.Bytes()))
	if s.Consensus != nil {
		counter(c.consensusProposals, float64(s.Consensus.Proposals))
		counter(c.consensusTimeouts, float64(s.Consensus.Timeouts))
		counter(c.consensusDropped, float64(s.Consensus.Dropped))
	}
}
