package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"

	golog "github.com/ipfs/go-log/v2"

	"github.com/p2pnode/p2pnode/node"
)

func TestVersionCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"version"}, &stdout, &stderr); code != 0 {
		t.Fatalf("version exited %d: %s", code, stderr.String())
	}
	out := stdout.String()
	b := node.ReadBuildInfo(version)
	for _, want := range []string{
		"p2pnode    " + b.Version,
		"commit     " + b.Commit,
		"go         " + runtime.Version(),
		"protocols  /p2pnode/<chain_id>/blocks/1.0.0",
		"/p2pnode/<chain_id>/committed/1.0.0",
		"/p2pnode/<chain_id>/chunks/1.0.0",
		"/p2pnode/<chain_id>/vote/1.0.0",
		"/p2pnode/<chain_id>/syncinfo/1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("version output lacks %q:\n%s", want, out)
		}
	}
	if code := run(t.Context(), []string{"version", "extra"}, &stdout, &stderr); code != 2 {
		t.Errorf("version extra exited %d, want 2", code)
	}
}

func TestOpsCommandUsage(t *testing.T) {
	tests := []struct {
		args       []string
		wantStderr string
	}{
		{[]string{"logs"}, "--admin or --home is required"},
		{[]string{"log-level"}, "--admin or --home is required"},
		{[]string{"log-level", "--admin", "http://127.0.0.1:1", "p2pnode/syncer"}, "give SUBSYSTEM and LEVEL"},
		{[]string{"logs", "--admin", "x", "--home", "y"}, "not both"},
		{[]string{"logs", "--admin", "http://127.0.0.1:1", "--level", "loud"}, "bad log filter"},
		{[]string{"tx"}, "HASH is required"},
		{[]string{"tx", strings.Repeat("ab", 32)}, "--home is required"},
		{[]string{"tx", "abc", "--home", "y"}, "HASH must be 64 hex digits"},
		{[]string{"tx", "--home", "y", "a"}, "unexpected argument"},
		{[]string{"state"}, "KEY is required"},
		{[]string{"state", "k"}, "--home is required"},
		{[]string{"state", "zz", "--hex", "--home", "y"}, "KEY is not hex"},
		{[]string{"state", strings.Repeat("k", 257), "--home", "y"}, "at most 256"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), tt.args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tt.wantStderr) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tt.args, code, stderr.String(), tt.wantStderr)
		}
	}
}

// TestLogLevelCommandChangesGoLog: p2pnode log-level through the admin API
// changes go-log's level, and a logger of the subsystem logs at it at once.
func TestLogLevelCommandChangesGoLog(t *testing.T) {
	const sub = "p2pnode/opstest"
	if err := golog.SetLogLevel(sub, "info"); err != nil {
		t.Fatal(err)
	}
	log := slog.New(golog.SlogHandler()).With("logger", sub)
	if log.Enabled(t.Context(), slog.LevelDebug) {
		t.Fatal("debug enabled before the change")
	}
	srv := httptest.NewServer(node.NewAdminHandler(node.AdminConfig{Levels: goLogLevels{}}))
	defer srv.Close()

	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"log-level", "--admin", srv.URL, sub, "debug"}, &stdout, &stderr); code != 0 {
		t.Fatalf("log-level exited %d: %s", code, stderr.String())
	}
	if !log.Enabled(t.Context(), slog.LevelDebug) {
		t.Fatal("debug not enabled after log-level debug")
	}
	if lvl, err := golog.SubsystemLevelName(sub); err != nil || lvl != "debug" {
		t.Fatalf("go-log level %q, %v; want debug", lvl, err)
	}
	stdout.Reset()
	if code := run(t.Context(), []string{"log-level", "--admin", srv.URL}, &stdout, &stderr); code != 0 {
		t.Fatalf("log-level (list) exited %d: %s", code, stderr.String())
	}
	listed := false
	for _, l := range strings.Split(stdout.String(), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == sub && f[1] == "debug" {
			listed = true
		}
	}
	if !listed {
		t.Fatalf("levels listing lacks %s at debug:\n%s", sub, stdout.String())
	}
	if code := run(t.Context(), []string{"log-level", "--admin", srv.URL, sub, "loud"}, &stdout, &stderr); code != 1 {
		t.Fatalf("log-level loud exited %d, want 1", code)
	}
}

// lineWriter collects written lines and cancels once it has n.
type lineWriter struct {
	mu     sync.Mutex
	lines  []string
	n      int
	cancel context.CancelFunc
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lines = append(w.lines, strings.Split(strings.TrimSpace(string(p)), "\n")...)
	if len(w.lines) >= w.n {
		w.cancel()
	}
	return len(p), nil
}

// TestLogsCommandTails: p2pnode logs prints the admin stream's filtered
// lines as JSON until its context ends.
func TestLogsCommandTails(t *testing.T) {
	hub := node.NewLogHub(64)
	srv := httptest.NewServer(node.NewAdminHandler(node.AdminConfig{Logs: hub}))
	defer srv.Close()
	// The stream sees what the handler beside it is enabled for.
	next := slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug})
	log := slog.New(hub.Handler(next)).With("logger", "p2pnode/syncer")
	other := slog.New(hub.Handler(next)).With("logger", "p2pnode/node")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &lineWriter{n: 2, cancel: cancel}
	done := make(chan int)
	var stderr bytes.Buffer
	go func() {
		done <- run(ctx, []string{"logs", "--admin", srv.URL, "--subsystem", "p2pnode/syncer", "--level", "info"}, out, &stderr)
	}()
	// Log until the command, once subscribed, has printed two lines.
	for i := 0; ; i++ {
		select {
		case code := <-done:
			if code != 0 {
				t.Fatalf("logs exited %d: %s", code, stderr.String())
			}
			out.mu.Lock()
			defer out.mu.Unlock()
			for _, l := range out.lines[:2] {
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("line %q: %v", l, err)
				}
				if m["msg"] != "wanted" || m["logger"] != "p2pnode/syncer" || m["level"] != "info" {
					t.Fatalf("line %q: want only p2pnode/syncer's info lines", l)
				}
			}
			return
		case <-t.Context().Done():
			t.Fatal("logs did not end")
		default:
		}
		other.Info("unwanted")
		log.Debug("unwanted")
		log.Info("wanted", "i", i)
		if i%100 == 99 {
			runtime.Gosched()
		}
	}
}

func TestLogHubFoundBehindErrorText(t *testing.T) {
	hub := node.NewLogHub(0)
	if got := logHub(errorText{hub.Handler(slog.DiscardHandler)}); got != hub {
		t.Fatalf("logHub = %p, want %p", got, hub)
	}
	if logHub(slog.DiscardHandler) != nil {
		t.Fatal("found a hub in a plain handler")
	}
}
