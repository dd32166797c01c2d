package node_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/blockstore"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/node"
	"github.com/p2pnode/p2pnode/protocol"
)

// fullNodeSeed derives the keys of full nodes, which are not validators.
const fullNodeSeed = 999

// testWriter forwards logs to the test's output until the test ends, then
// drops them (libp2p goroutines may log while the host closes).
type testWriter struct {
	mu   sync.Mutex
	w    io.Writer
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return len(p), nil
	}
	return w.w.Write(p)
}

// testLogger logs at level to t's output, tagged with name.
func testLogger(t testing.TB, name string, level slog.Level) *slog.Logger {
	w := &testWriter{w: t.Output()}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})).With("node", name)
}

// testConfig is a node of genesis g with key, in a fresh home, tuned for
// fast tests on loopback.
func testConfig(t testing.TB, name string, g *chain.Genesis, key crypto.PrivKey) node.Config {
	cfg := node.DefaultConfig()
	cfg.Home = t.TempDir()
	cfg.Genesis = g
	cfg.Key = key
	cfg.SyncInfoInterval = 200 * time.Millisecond
	cfg.ReconnectMin = 50 * time.Millisecond
	cfg.ReconnectMax = 500 * time.Millisecond
	cfg.SyncTimeout = 20 * time.Second
	cfg.Logger = testLogger(t, name, slog.LevelWarn)
	return cfg
}

// start builds and runs a node until the test ends.
func start(t testing.TB, cfg node.Config) *node.Node {
	t.Helper()
	n, err := node.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	// Run registers the stream handlers: a test that dials at once must
	// not find the protocols missing.
	blocks := protocol.BlocksID(cfg.Genesis.ChainID)
	waitFor(t, "the node's stream handlers", func() bool { return slices.Contains(n.Host().Mux().Protocols(), blocks) })
	return n
}

// waitFor polls cond until it holds, failing the test after a bound.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("test ended waiting for %s", what)
		case <-tick.C:
		}
	}
}

// preload writes the chain of nodes, and the QC of the last one, into the
// store of the node whose home is home, as if it had followed the chain:
// in commits of up to 64 blocks, as a sync inserts them.
func preload(t testing.TB, home string, g *chain.Genesis, nodes []*chaintest.Node) {
	t.Helper()
	o, err := blockstore.Open(filepath.Join(home, node.StoreFile), g, blockstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Disk.Close()
	for i := 0; i < len(nodes); i += 64 {
		if err := o.Blocks.InsertChain(chaintest.Blocks(nodes[i:min(i+64, len(nodes))])); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.Blocks.InsertQC(nodes[len(nodes)-1].QC); err != nil {
		t.Fatal(err)
	}
}

func addrInfos(ns ...*node.Node) []peer.AddrInfo {
	var out []peer.AddrInfo
	for _, n := range ns {
		out = append(out, n.AddrInfo())
	}
	return out
}

// startServer starts a full node (key fullNodeSeed/0) whose store holds
// the chain of blocks, its config changed by adjust if not nil.
func startServer(t testing.TB, g *chain.Genesis, blocks []*chaintest.Node, adjust func(*node.Config)) *node.Node {
	t.Helper()
	cfg := testConfig(t, "server", g, chaintest.Key(fullNodeSeed, 0))
	if adjust != nil {
		adjust(&cfg)
	}
	preload(t, cfg.Home, g, blocks)
	return start(t, cfg)
}

// clientConfig is a full node (key fullNodeSeed/1) that bootstraps from
// server.
func clientConfig(t testing.TB, g *chain.Genesis, server *node.Node) node.Config {
	cfg := testConfig(t, "client", g, chaintest.Key(fullNodeSeed, 1))
	cfg.Bootstrap = addrInfos(server)
	return cfg
}
