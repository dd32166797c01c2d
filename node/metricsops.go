package node

import (
	"context"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/syncer"
)

// Sides of a request, for p2pnode_request_duration_seconds.
const (
	sideClient = "client" // requests this node makes
	sideServer = "server" // requests it answers
)

// Kinds of a sync, for p2pnode_sync_duration_seconds: the heaviest phase
// the sync ran.
const (
	syncKindFetch       = "fetch"        // blocks fetched back from a QC
	syncKindForward     = "forward"      // committed ranges fetched forward
	syncKindFastForward = "fast_forward" // the ledger state-synced
)

// opsMetrics are the build, request, sync and byte metrics.
type opsMetrics struct {
	requests *prometheus.HistogramVec // by protocol and side
	syncs    *prometheus.HistogramVec // by kind
	bytes    *prometheus.CounterVec   // by protocol and direction
}

// newOpsMetrics registers the metrics in reg, with build_info set to b.
func newOpsMetrics(reg prometheus.Registerer, b BuildInfo) *opsMetrics {
	m := &opsMetrics{
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "p2pnode_request_duration_seconds",
			Help:    "Duration of stream requests by protocol (blocks, committed, chunks, vote) and side (client: made by this node; server: answered by it).",
			Buckets: prometheus.ExponentialBucketsRange(0.001, 32.768, 16),
		}, []string{"protocol", "side"}),
		syncs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "p2pnode_sync_duration_seconds",
			Help:    "Duration of successful syncs by kind, the heaviest phase the sync ran (fetch, forward, fast_forward).",
			Buckets: prometheus.ExponentialBucketsRange(0.001, 1024, 21),
		}, []string{"kind"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "p2pnode_stream_bytes_total",
			Help: "Bytes read (in) and written (out) on the node's stream protocols, as client and server.",
		}, []string{"protocol", "direction"}),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "p2pnode_build_info",
		Help:        "Always 1; the labels describe the binary.",
		ConstLabels: prometheus.Labels{"version": b.Version, "commit": b.Commit, "go_version": b.GoVersion},
	})
	build.Set(1)
	reg.MustRegister(m.requests, m.syncs, m.bytes, build)
	return m
}

// protoName is the short name of a node protocol id
// (/p2pnode/<chain>/blocks/1.0.0 is "blocks").
func protoName(id libp2pproto.ID) string {
	parts := strings.Split(string(id), "/")
	if len(parts) < 3 {
		return "other"
	}
	return parts[len(parts)-2]
}

// countStream counts the bytes read and written on a stream. Everything
// else is the stream's.
type countStream struct {
	network.Stream
	in, out prometheus.Counter
}

func (s *countStream) Read(p []byte) (int, error) {
	n, err := s.Stream.Read(p)
	if n > 0 {
		s.in.Add(float64(n))
	}
	return n, err
}

func (s *countStream) Write(p []byte) (int, error) {
	n, err := s.Stream.Write(p)
	if n > 0 {
		s.out.Add(float64(n))
	}
	return n, err
}

// count wraps s to count its bytes under proto; a nil m leaves s as is.
func (m *opsMetrics) count(s network.Stream, proto string) network.Stream {
	if m == nil {
		return s
	}
	return &countStream{Stream: s, in: m.bytes.WithLabelValues(proto, "in"), out: m.bytes.WithLabelValues(proto, "out")}
}

// observeRequest records a request of proto that began at start; a nil m
// does nothing. Use it deferred.
func (m *opsMetrics) observeRequest(proto, side string, start time.Time) {
	if m != nil {
		m.requests.WithLabelValues(proto, side).Observe(time.Since(start).Seconds())
	}
}

// serve wraps a stream handler: the stream's bytes are counted and the
// handler's time observed as a server request.
func (m *opsMetrics) serve(h network.StreamHandler) network.StreamHandler {
	return func(s network.Stream) {
		proto := protoName(s.Protocol())
		defer m.observeRequest(proto, sideServer, time.Now())
		h(m.count(s, proto))
	}
}

// observeSync records a successful sync that began at start, its kind read
// from how the syncer's counters moved since before.
func (m *opsMetrics) observeSync(before, after syncer.Stats, start time.Time) {
	kind := syncKindFetch
	switch {
	case after.FastForwards > before.FastForwards:
		kind = syncKindFastForward
	case after.ForwardSyncs > before.ForwardSyncs:
		kind = syncKindForward
	}
	m.syncs.WithLabelValues(kind).Observe(time.Since(start).Seconds())
}

// timedSyncer is the engine's syncer: the sync manager, with each
// successful SyncTo observed.
type timedSyncer struct {
	mgr *syncer.Manager
	m   *opsMetrics
}

func (t timedSyncer) SyncTo(ctx context.Context, si *chain.SyncInfo, from peer.ID) error {
	before, start := t.mgr.Stats(), time.Now()
	err := t.mgr.SyncTo(ctx, si, from)
	if err == nil {
		t.m.observeSync(before, t.mgr.Stats(), start)
	}
	return err
}
