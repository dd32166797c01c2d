package testnet_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/p2pnode/p2pnode/testnet"
)

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	UID    string `json:"uid"`
	Panels []struct {
		ID         int    `json:"id"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// metricName matches the metric names of a PromQL expression: this
// project's, libp2p's and the Go client's process and runtime metrics.
var metricName = regexp.MustCompile(`\b(?:p2pnode|libp2p|process|go)_[a-z0-9_]+\b`)

// dashboardMetrics reads testnet/monitoring/dashboard.json and returns it
// with the metric names its queries use, histogram suffixes stripped.
func dashboardMetrics(t *testing.T) (dashboard, []string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("monitoring", "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	var names []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, m := range metricName.FindAllString(tg.Expr, -1) {
				names = append(names, strings.TrimSuffix(m, "_bucket"))
			}
		}
	}
	slices.Sort(names)
	return d, slices.Compact(names)
}

// TestDashboardIsValid: the dashboard parses, its panels have distinct ids,
// each query panel queries the provisioned data source, and every query
// names at least one metric.
func TestDashboardIsValid(t *testing.T) {
	d, names := dashboardMetrics(t)
	if d.UID == "" || len(names) == 0 {
		t.Fatalf("uid %q, %d metrics", d.UID, len(names))
	}
	ds, err := os.ReadFile(filepath.Join("monitoring", "grafana", "provisioning", "datasources", "prometheus.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range d.Panels {
		if seen[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		seen[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Datasource.UID == "" || !strings.Contains(string(ds), "uid: "+p.Datasource.UID) {
			t.Errorf("panel %q: data source %q is not provisioned", p.Title, p.Datasource.UID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if !metricName.MatchString(tg.Expr) {
				t.Errorf("panel %q: query %q names no metric", p.Title, tg.Expr)
			}
		}
	}
}

// TestInitWritesPrometheusTargets: the targets file lists every node's
// API address once, labelled with its name and role.
func TestInitWritesPrometheusTargets(t *testing.T) {
	dir := t.TempDir()
	m := testnet.DefaultManifest(2, 1, 0)
	net, err := testnet.Init(dir, testnet.Options{Validators: 2, Fullnodes: 1, Config: m.Config})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, testnet.PrometheusTargetsFile))
	if err != nil {
		t.Fatal(err)
	}
	var groups []struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels"`
	}
	if err := json.Unmarshal(raw, &groups); err != nil {
		t.Fatal(err)
	}
	if len(groups) != len(net.Nodes) {
		t.Fatalf("%d target groups, want %d", len(groups), len(net.Nodes))
	}
	for i, g := range groups {
		n := net.Nodes[i]
		if len(g.Targets) != 1 || "http://"+g.Targets[0] != n.API {
			t.Errorf("%s: targets %v, API %s", n.Name, g.Targets, n.API)
		}
		if g.Labels["node"] != n.Name || g.Labels["role"] != n.Role || g.Labels["chain_id"] != net.ChainID {
			t.Errorf("%s: labels %v", n.Name, g.Labels)
		}
	}
}

// eventMetrics are the metrics the dashboard queries that have no series
// until what they count happens.
var eventMetrics = map[string]bool{
	"libp2p_rcmgr_blocked_resources": true, // a series per resource the resource manager refused
}

// checkDashboardMetrics fails t unless every metric the dashboard queries
// is exported by at least one of r's live nodes: a renamed or removed
// metric would leave a panel empty.
func checkDashboardMetrics(t *testing.T, r *testnet.Runner) {
	t.Helper()
	_, want := dashboardMetrics(t)
	have := map[string]bool{}
	for name, api := range r.Live() {
		resp, err := http.Get(api + "/metrics")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: GET /metrics: %d %v", name, resp.StatusCode, err)
		}
		for _, line := range strings.Split(string(body), "\n") {
			if f := strings.Fields(line); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
				have[f[2]] = true
			}
		}
	}
	for _, m := range want {
		if !have[m] && !eventMetrics[m] {
			t.Errorf("the dashboard queries %s, which no node exports", m)
		}
	}
}
