package node_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/p2pnode/p2pnode/node"
)

// hubLogger returns a logger of subsystem that logs at debug and above
// through hub (and nowhere else).
func hubLogger(hub *node.LogHub, subsystem string) *slog.Logger {
	return slog.New(hub.Handler(allHandler{})).With("logger", subsystem)
}

// allHandler is enabled at every level and writes nothing.
type allHandler struct{}

func (allHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (allHandler) Handle(context.Context, slog.Record) error { return nil }
func (h allHandler) WithAttrs([]slog.Attr) slog.Handler      { return h }
func (h allHandler) WithGroup(string) slog.Handler           { return h }

// decodeLine decodes one streamed JSON line.
func decodeLine(t *testing.T, line []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("line %q: %v", line, err)
	}
	return m
}

func TestLogStreamFilters(t *testing.T) {
	hub := node.NewLogHub(16)
	syncLog, nodeLog := hubLogger(hub, "p2pnode/syncer"), hubLogger(hub, "p2pnode/node")
	tests := []struct {
		name      string
		level     string
		subsystem []string
		want      []string // messages streamed, in order
	}{
		{name: "everything", want: []string{"sync debug", "sync info", "node info", "node warn"}},
		{name: "info and up", level: "info", want: []string{"sync info", "node info", "node warn"}},
		{name: "one subsystem", subsystem: []string{"p2pnode/syncer"}, want: []string{"sync debug", "sync info"}},
		{name: "comma list", level: "WARN", subsystem: []string{"p2pnode/syncer,p2pnode/node"}, want: []string{"node warn"}},
		{name: "repeated", level: "info", subsystem: []string{"p2pnode/node", "p2pnode/other"}, want: []string{"node info", "node warn"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := node.ParseLogFilter(tt.level, tt.subsystem)
			if err != nil {
				t.Fatal(err)
			}
			s := hub.Subscribe(f)
			defer s.Close()
			syncLog.Debug("sync debug", "round", 3)
			syncLog.Info("sync info", "err", errors.New("boom"))
			nodeLog.Info("node info")
			nodeLog.Warn("node warn", slog.Group("peer", "id", "x"))
			var got []string
			for len(s.Items()) > 0 {
				it := <-s.Items()
				m := decodeLine(t, it.Line)
				got = append(got, m["msg"].(string))
				if m["logger"] == nil || m["level"] == nil || m["time"] == nil {
					t.Errorf("line %s lacks logger, level or time", it.Line)
				}
				switch m["msg"] {
				case "sync debug":
					if m["level"] != "debug" || m["round"] != 3.0 || m["logger"] != "p2pnode/syncer" {
						t.Errorf("line %s", it.Line)
					}
				case "sync info":
					if m["err"] != "boom" {
						t.Errorf("err = %v, want boom", m["err"])
					}
				case "node warn":
					if p, _ := m["peer"].(map[string]any); p["id"] != "x" || m["level"] != "warn" {
						t.Errorf("line %s", it.Line)
					}
				}
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("streamed %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseLogFilterRejectsLevel(t *testing.T) {
	if _, err := node.ParseLogFilter("loud", nil); !errors.Is(err, node.ErrLogFilter) {
		t.Fatalf("err = %v, want ErrLogFilter", err)
	}
}

// TestLogStreamSlowReaderDoesNotBlock: a reader that never reads does not
// hold up logging; its lines beyond the buffer are dropped and counted,
// and once it reads, it is told how many it missed, in place.
func TestLogStreamSlowReaderDoesNotBlock(t *testing.T) {
	const buffer, lines = 1024, 20_000
	hub := node.NewLogHub(buffer)
	stalled := hub.Subscribe(node.LogFilter{Level: slog.LevelDebug})
	defer stalled.Close()
	log := hubLogger(hub, "p2pnode/test")

	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range lines {
			log.Info("line", "i", i)
		}
	}()
	select {
	case <-done:
	case <-t.Context().Done():
		t.Fatal("logging blocked on a reader that does not read")
	}
	if got := stalled.Dropped(); got != lines-buffer {
		t.Fatalf("dropped %d, want %d", got, lines-buffer)
	}
	if hub.Dropped() != lines-buffer {
		t.Fatalf("hub dropped %d, want %d", hub.Dropped(), lines-buffer)
	}
	for i := range buffer {
		it := <-stalled.Items()
		if m := decodeLine(t, it.Line); m["i"] != float64(i) {
			t.Fatalf("line %d: %s", i, it.Line)
		}
	}
	log.Info("after")
	if it := <-stalled.Items(); it.Dropped != lines-buffer || it.Line != nil {
		t.Fatalf("first item after the gap: %+v, want a notice of %d dropped lines", it, lines-buffer)
	}
	if it := <-stalled.Items(); decodeLine(t, it.Line)["msg"] != "after" {
		t.Fatalf("then %s, want the line after the gap", it.Line)
	}
}

// adminServer serves the admin API with hub and levels, no gater.
func adminServer(t *testing.T, hub *node.LogHub, levels node.LogLevels) *httptest.Server {
	srv := httptest.NewServer(node.NewAdminHandler(node.AdminConfig{Logs: hub, Levels: levels}))
	t.Cleanup(srv.Close)
	return srv
}

// openLogs starts GET /admin/logs?query; when it returns, the stream is
// subscribed.
func openLogs(t *testing.T, srv *httptest.Server, query string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/admin/logs?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestAdminLogsHTTP(t *testing.T) {
	hub := node.NewLogHub(64)
	srv := adminServer(t, hub, nil)
	resp := openLogs(t, srv, "level=info&subsystem=p2pnode/syncer")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	syncLog, nodeLog := hubLogger(hub, "p2pnode/syncer"), hubLogger(hub, "p2pnode/node")
	syncLog.Debug("too low")
	nodeLog.Info("other subsystem")
	syncLog.Info("synced", "commit_round", 7)
	syncLog.Warn("sync failed")

	sc := bufio.NewScanner(resp.Body)
	for _, want := range []string{"synced", "sync failed"} {
		if !sc.Scan() {
			t.Fatalf("stream ended before %q: %v", want, sc.Err())
		}
		m := decodeLine(t, sc.Bytes())
		if m["msg"] != want || m["logger"] != "p2pnode/syncer" {
			t.Fatalf("line %s, want msg %q", sc.Bytes(), want)
		}
		if want == "synced" && m["commit_round"] != 7.0 {
			t.Fatalf("line %s lacks commit_round", sc.Bytes())
		}
	}

	bad := openLogs(t, srv, "level=loud")
	if bad.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad level: status %d, want 400", bad.StatusCode)
	}
}

// TestAdminLogsSlowClient: an HTTP client that never reads its stream
// does not hold up logging; the hub drops its lines instead.
func TestAdminLogsSlowClient(t *testing.T) {
	hub := node.NewLogHub(node.DefaultLogStreamLines)
	srv := adminServer(t, hub, nil)
	_ = openLogs(t, srv, "") // never read
	log := hubLogger(hub, "p2pnode/test")
	pad := strings.Repeat("x", 1000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// About 30 MB of lines: more than the connection's buffers hold.
		for i := range 30_000 {
			log.Info("line", "i", i, "pad", pad)
		}
	}()
	select {
	case <-done:
	case <-t.Context().Done():
		t.Fatal("logging blocked on a client that does not read")
	}
	if hub.Dropped() == 0 {
		t.Fatal("no lines dropped for a client that does not read")
	}
}

// fakeLevels records levels in a map.
type fakeLevels map[string]string

func (f fakeLevels) SetLevel(sub, level string) error {
	if sub == "*" {
		for k := range f {
			f[k] = level
		}
		return nil
	}
	f[sub] = level
	return nil
}

func (f fakeLevels) Levels() map[string]string { return f }

func TestAdminLogLevel(t *testing.T) {
	levels := fakeLevels{"": "info", "p2pnode/syncer": "info"}
	srv := adminServer(t, nil, levels)
	post := func(query string) int {
		resp, err := srv.Client().Post(srv.URL+"/admin/log-level?"+query, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("subsystem=p2pnode/syncer&level=debug"); code != http.StatusOK {
		t.Fatalf("set: status %d", code)
	}
	if code := post("subsystem=p2pnode/syncer&level=loud"); code != http.StatusBadRequest {
		t.Fatalf("bad level: status %d, want 400", code)
	}
	if code := post("subsystem=p2pnode/syncer"); code != http.StatusBadRequest {
		t.Fatalf("no level: status %d, want 400", code)
	}
	resp, err := srv.Client().Get(srv.URL + "/admin/log-level")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got["p2pnode/syncer"] != "debug" || got[""] != "info" {
		t.Fatalf("levels %v", got)
	}
	if code := post("level=warn"); code != http.StatusOK || levels["p2pnode/syncer"] != "warn" || levels[""] != "warn" {
		t.Fatalf("set all: status %d, levels %v", code, levels)
	}
}

// BenchmarkLogHub measures a logging call through the hub's handler with
// no reader, and with one reader that keeps up.
func BenchmarkLogHub(b *testing.B) {
	for _, readers := range []int{0, 1} {
		b.Run(map[int]string{0: "no reader", 1: "one reader"}[readers], func(b *testing.B) {
			hub := node.NewLogHub(node.DefaultLogStreamLines)
			log := hubLogger(hub, "p2pnode/bench")
			if readers > 0 {
				s := hub.Subscribe(node.LogFilter{Level: slog.LevelDebug})
				defer s.Close()
				stop := make(chan struct{})
				defer close(stop)
				go func() {
					for {
						select {
						case <-s.Items():
						case <-stop:
							return
						}
					}
				}()
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				log.Info("synced", "commit_round", i, "peer", "12D3KooW")
			}
		})
	}
}
