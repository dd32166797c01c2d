package testnet_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2pnode/p2pnode/node"
	"github.com/p2pnode/p2pnode/testnet"
)

var soak = flag.Bool("soak", false, "also run the long scenarios")

// binary is the p2pnode binary TestMain builds; "" under -short.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	code := func() int {
		if testing.Short() {
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "p2pnode-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binary = filepath.Join(dir, "p2pnode")
		cmd := exec.Command("go", "build", "-o", binary, "github.com/p2pnode/p2pnode/cmd/p2pnode")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build p2pnode:", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// e2eManifest is a testnet of the given size tuned for tests: short round
// timeouts and reconnects, a low fast-forward threshold.
func e2eManifest(validators, fullnodes int) *testnet.Manifest {
	m := testnet.DefaultManifest(validators, fullnodes, 0)
	m.Config.RoundTimeout = testnet.Duration(300 * time.Millisecond)
	m.Config.MaxRoundTimeout = testnet.Duration(2 * time.Second)
	m.Config.SyncInfoInterval = testnet.Duration(200 * time.Millisecond)
	m.Config.ReconnectMin = testnet.Duration(50 * time.Millisecond)
	m.Config.ReconnectMax = testnet.Duration(500 * time.Millisecond)
	m.Config.SyncTimeout = testnet.Duration(30 * time.Second)
	m.Config.FastForwardRounds = 30
	m.Config.ProgressInterval = testnet.Duration(100 * time.Millisecond)
	m.CheckTimeout = testnet.Duration(60 * time.Second)
	m.PrefixWindow = 0
	return &m
}

// startNet sets m up in a temporary directory and starts the nodes that
// have no start delay; every process is killed when the test ends, and on
// failure the tail of every node's log is printed.
func startNet(t *testing.T, m *testnet.Manifest) *testnet.Runner {
	t.Helper()
	if binary == "" {
		t.Skip("-short: no processes")
	}
	dir := t.TempDir()
	runnerLog := filepath.Join(dir, "runner.log")
	f, err := os.Create(runnerLog)
	if err != nil {
		t.Fatal(err)
	}
	r, err := testnet.Setup(dir, m, testnet.RunnerConfig{
		Binary: binary,
		Env:    []string{"GOLOG_LOG_LEVEL=error,p2pnode/syncer=info,p2pnode/cmd=info,p2pnode/node=info,p2pnode/consensus=info"},
		Logger: slog.New(slog.NewTextHandler(f, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Close()
		_ = f.Close()
		if t.Failed() {
			t.Logf("runner:\n%s", tail(runnerLog, 40))
			for _, n := range r.Network().Nodes {
				t.Logf("last lines of %s:\n%s", n.Name, tail(n.Log, 25))
			}
		}
	})
	if err := r.StartNetwork(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	return r
}

// stage runs st with m's timeouts.
func stage(t *testing.T, r *testnet.Runner, m *testnet.Manifest, st testnet.Stage) {
	t.Helper()
	if err := r.RunStage(t.Context(), st, time.Duration(m.CheckTimeout), m.PrefixWindow); err != nil {
		t.Fatalf("stage %q: %v", st.Name, err)
	}
}

// watch returns a channel closed when the node logs a line with substr.
func watch(t *testing.T, r *testnet.Runner, name, substr string) <-chan struct{} {
	t.Helper()
	ch, err := r.WatchLog(name, substr)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// waitLog waits until ch is closed, failing the test after a minute.
func waitLog(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(time.Minute):
		t.Fatalf("timed out waiting for %s", what)
	case <-t.Context().Done():
	}
}

// waitStatus polls the node's status until cond holds, failing the test
// after a minute.
func waitStatus(t *testing.T, r *testnet.Runner, name, what string, cond func(s node.Status) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	err := testnet.WaitFor(ctx, func(ctx context.Context) error {
		s, err := testnet.FetchStatus(ctx, r.API(name))
		if err != nil {
			return err
		}
		return cond(s)
	})
	if err != nil {
		t.Fatalf("%s: %s: %v", name, what, err)
	}
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// logHas reports whether the node's log file holds a line with substr.
func logHas(t *testing.T, r *testnet.Runner, name, substr string) bool {
	t.Helper()
	ni, _ := r.Network().Node(name)
	raw, err := os.ReadFile(ni.Log)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(raw), substr)
}
