package node_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/node"
)

// get serves GET path from h and returns the status and body.
func get(t *testing.T, h http.Handler, path string) (int, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Body)
	return rec.Code, body
}

func health(t *testing.T, n *node.Node) (int, node.Health) {
	t.Helper()
	code, body := get(t, n.Handler(), "/health")
	var h node.Health
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatalf("GET /health: %v: %s", err, body)
	}
	return code, h
}

func TestHealthWithoutPeersIsNotReady(t *testing.T) {
	n, _ := newIdleNode(t, 6)
	code, h := health(t, n)
	if code != http.StatusServiceUnavailable || h.Ready || h.Reason != "no peers" {
		t.Fatalf("GET /health = %d %+v, want 503, not ready, no peers", code, h)
	}
	if h.HighestQCRound != 6 || h.ReadyRounds != node.DefaultConfig().ReadyRounds {
		t.Fatalf("health %+v: want highest QC round 6, ready rounds %d", h, node.DefaultConfig().ReadyRounds)
	}
}

func TestHealthLoneValidatorIsReady(t *testing.T) {
	v := chaintest.NewValidators(62, 1)
	n, err := node.New(testConfig(t, "lone", v.Genesis, v.Keys[0]))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if code, h := health(t, n); code != http.StatusOK || !h.Ready || h.Reason != "" {
		t.Fatalf("GET /health = %d %+v, want 200 ready", code, h)
	}
}

func TestStatusReportsOpsFields(t *testing.T) {
	n, _ := newIdleNode(t, 6) // committed rounds 1 to 4
	_, body := get(t, n.Handler(), "/status")
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"catching_up":     false,
		"best_peer_round": 0.0,
		"distance":        0.0,
		"earliest_round":  1.0,
		"version":         n.Build().Version,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %v, want %v", k, got[k], w)
		}
	}
	if n.Build().Version == "" {
		t.Error("empty version")
	}
}

func TestPprofOnlyOnAdmin(t *testing.T) {
	n, _ := newIdleNode(t, 2)
	admin := node.NewAdminHandler(node.AdminConfig{Gater: n.Gater()})
	if code, body := get(t, admin, "/debug/pprof/"); code != http.StatusOK || !strings.Contains(string(body), "goroutine") {
		t.Fatalf("admin GET /debug/pprof/ = %d, want 200 with the profiles", code)
	}
	if code, _ := get(t, admin, "/debug/pprof/goroutine?debug=1"); code != http.StatusOK {
		t.Fatalf("admin goroutine profile = %d", code)
	}
	if code, _ := get(t, admin, "/admin/blocked"); code != http.StatusOK {
		t.Fatalf("admin GET /admin/blocked = %d: the gater's routes are gone", code)
	}
	if code, _ := get(t, n.Handler(), "/debug/pprof/"); code != http.StatusNotFound {
		t.Fatalf("public GET /debug/pprof/ = %d, want 404", code)
	}
}

func TestMetricsOfIdleNode(t *testing.T) {
	n, _ := newIdleNode(t, 2)
	b := node.ReadBuildInfo("")
	wantMetrics(t, n, "idle node",
		`p2pnode_build_info{commit="`+b.Commit+`",go_version="`+b.GoVersion+`",version="`+b.Version+`"} 1`,
		`libp2p_rcmgr_connections{dir="inbound",scope="system"}`,
		`libp2p_rcmgr_fds{scope="system"}`,
		`libp2p_rcmgr_limit{`,
		"libp2p_rcmgr_conn_memory_bucket",
		"libp2p_identify_addrs_count", // the host's own metrics
	)
}

// TestOpsAfterSync: a node that caught up from a peer is ready, reports
// the peer's round, and its metrics hold the request, byte and sync
// series of both sides.
func TestOpsAfterSync(t *testing.T) {
	v := chaintest.NewValidators(63, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 2, TxSize: 30, Seed: 7})
	blocks := b.Extend(b.Genesis(), 14)
	server := startServer(t, v.Genesis, blocks, nil)
	want := server.Status()
	client := start(t, clientConfig(t, v.Genesis, server))
	// The sync is observed just after it returns, so a client can be
	// caught up a moment before its sync series shows.
	waitFor(t, "client to catch up, be ready and observe its sync", func() bool {
		s := client.Status()
		_, m := get(t, client.Handler(), "/metrics")
		return s.HighestQCRound == want.HighestQCRound && client.Health().Ready &&
			strings.Contains(string(m), "p2pnode_sync_duration_seconds_count")
	})
	code, h := health(t, client)
	if code != http.StatusOK || !h.Ready || h.BestPeerRound != want.HighestQCRound || h.Distance != 0 || h.Peers != 1 {
		t.Fatalf("GET /health = %d %+v, want 200, ready, best peer round %d", code, h, want.HighestQCRound)
	}
	if s := client.Status(); s.EarliestRound != 1 || s.BestPeerRound != want.HighestQCRound || s.CatchingUp {
		t.Fatalf("status: earliest %d, best peer %d, catching up %v", s.EarliestRound, s.BestPeerRound, s.CatchingUp)
	}

	wantMetrics(t, client, "client",
		`p2pnode_request_duration_seconds_bucket{protocol="blocks",side="client",le="0.001"}`,
		`p2pnode_stream_bytes_total{direction="in",protocol="blocks"}`,
		`p2pnode_stream_bytes_total{direction="out",protocol="blocks"}`,
		`p2pnode_sync_duration_seconds_count{kind="fetch"}`,
		`p2pnode_sync_peer_rate_bytes{peer="`+server.ID().String()+`"}`,
		`p2pnode_sync_peer_window{peer="`+server.ID().String()+`"}`,
		`libp2p_rcmgr_streams{`,
	)
	wantMetrics(t, server, "server",
		`p2pnode_request_duration_seconds_count{protocol="blocks",side="server"}`,
		`p2pnode_stream_bytes_total{direction="out",protocol="blocks"}`,
	)
}

// TestHealthBehindIsNotReady: a node that hears of a peer far ahead and
// cannot catch up (every sync hits its deadline at once) is not ready,
// and says how far behind it is.
func TestHealthBehindIsNotReady(t *testing.T) {
	v := chaintest.NewValidators(64, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 1, TxSize: 30, Seed: 8})
	blocks := b.Extend(b.Genesis(), 30)
	server := startServer(t, v.Genesis, blocks, nil)
	ccfg := clientConfig(t, v.Genesis, server)
	ccfg.SyncTimeout = time.Nanosecond
	client := start(t, ccfg)
	waitFor(t, "client to hear of the server's round", func() bool { return client.Health().BestPeerRound == 30 })
	code, h := health(t, client)
	if code != http.StatusServiceUnavailable || h.Ready || !h.CatchingUp || h.Distance != 30 ||
		h.Reason != "30 rounds behind the best peer (at most 10)" {
		t.Fatalf("GET /health = %d %+v, want 503, catching up, 30 rounds behind", code, h)
	}
	if s := client.Status(); !s.CatchingUp || s.Distance != 30 || s.BestPeerRound != 30 {
		t.Fatalf("status: catching up %v, distance %d, best peer round %d", s.CatchingUp, s.Distance, s.BestPeerRound)
	}
}

// wantMetrics fails t unless n's GET /metrics holds every one of names
// (who names n in the errors).
func wantMetrics(t *testing.T, n *node.Node, who string, names ...string) {
	t.Helper()
	_, body := get(t, n.Handler(), "/metrics")
	for _, name := range names {
		if !strings.Contains(string(body), name) {
			t.Errorf("%s GET /metrics lacks %s", who, name)
		}
	}
}
