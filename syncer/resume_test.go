package syncer_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/blockstore"
	"github.com/p2pnode/p2pnode/chain/store"
	"github.com/p2pnode/p2pnode/protocol"
	"github.com/p2pnode/p2pnode/syncer"
)

// durableNode is a node over a bbolt store, rebuilt from what the store
// recovers, as a restarting node does.
type durableNode struct {
	node
	db     *store.Store
	target *store.SyncTarget // an unfinished fast-forward, if any
}

// openDurable opens the store at path the way a node starts: blockstore.Open
// recovers the root, the tree and any unfinished fast-forward.
func openDurable(t *testing.T, w *world, path string) *durableNode {
	t.Helper()
	o, err := blockstore.Open(path, w.v.Genesis, blockstore.Config{})
	if err != nil {
		t.Fatalf("rebuild the block store from the store file: %v", err)
	}
	t.Cleanup(func() { o.Disk.Close() })
	return &durableNode{node: node{ledger: o.Ledger, store: o.Blocks}, db: o.Disk, target: o.SyncTarget}
}

func (d *durableNode) manager(t *testing.T, w *world, cfg syncer.Config) *syncer.Manager {
	t.Helper()
	cfg.Logger = slog.New(slog.DiscardHandler)
	m, err := syncer.New(d.store, w.net, w.v.Verifier, "client", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// chunkStarts records the start versions of chunk requests; stopAt, if
// positive, cancels the sync at the stopAt-th request.
type chunkStarts struct {
	mu     sync.Mutex
	starts []uint64
	n      atomic.Int64
}

func (c *chunkStarts) install(w *world, stopAt int64, cancel context.CancelFunc) {
	for _, id := range w.net.Peers() {
		w.net.Peer(id).OnChunk = func(ctx context.Context, req protocol.ChunkRequest, honest func() *protocol.ChunkResponse) (*protocol.ChunkResponse, error) {
			if stopAt > 0 && c.n.Add(1) >= stopAt {
				cancel() // the node stops here
				return nil, context.Canceled
			}
			c.mu.Lock()
			c.starts = append(c.starts, req.StartVersion)
			c.mu.Unlock()
			return honest(), nil
		}
	}
}

// TestResumeFastForward: a node stopped after persisting the 3-chain
// (before any chunk, or after some) restarts from its bbolt store, which
// reports the interrupted fast-forward; resuming it completes the ledger
// without fetching applied versions again, and the next restart is clean.
func TestResumeFastForward(t *testing.T) {
	for _, stopAt := range []int64{1, 4} {
		w := newWorld(t, 4, 30, 4)
		n := len(w.nodes)
		path := filepath.Join(t.TempDir(), "node.db")
		cfg := syncer.SeedConfig()
		cfg.ChunkTxs = 16

		// First run: stopped at the stopAt-th chunk request.
		d := openDurable(t, w, path)
		ctx, cancel := context.WithCancel(context.Background())
		var first chunkStarts
		first.install(w, stopAt, cancel)
		err := d.manager(t, w, cfg).SyncTo(ctx, w.syncInfo(), w.author())
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("stop at chunk %d: err %v, want context.Canceled", stopAt, err)
		}
		applied := d.ledger.Version()
		if want := uint64(stopAt-1) * uint64(cfg.ChunkTxs); applied != want {
			t.Fatalf("stop at chunk %d: ledger at version %d, want %d", stopAt, applied, want)
		}
		if err := d.db.Close(); err != nil {
			t.Fatal(err)
		}

		// Restart: the store reports the 3-chain to resume.
		d = openDurable(t, w, path)
		st := d.target
		if st == nil {
			t.Fatalf("stop at chunk %d: no sync target recovered", stopAt)
		}
		for i, nd := range w.nodes[n-3:] {
			if st.Blocks[i].ID != nd.Block.ID || st.QCs[i].Hash() != nd.QC.Hash() {
				t.Fatalf("stop at chunk %d: sync target block %d is not B%d", stopAt, i, i)
			}
		}
		if got := d.ledger.Version(); got != applied {
			t.Fatalf("stop at chunk %d: reopened ledger at version %d, want %d", stopAt, got, applied)
		}
		var second chunkStarts
		second.install(w, 0, nil)
		m := d.manager(t, w, cfg)
		if err := m.ResumeFastForward(testCtx(t), st.Blocks, st.QCs); err != nil {
			t.Fatalf("stop at chunk %d: resume: %v", stopAt, err)
		}
		if len(second.starts) == 0 || slices.Min(second.starts) != applied {
			t.Fatalf("stop at chunk %d: resumed with chunks at %v, want none below %d", stopAt, second.starts, applied)
		}
		checkSameLedger(t, w, d)
		if root := d.store.Root(); root.Block.ID != w.nodes[n-3].Block.ID || root.LedgerInfo.Hash() != w.nodes[n-1].QC.Hash() {
			t.Fatalf("stop at chunk %d: root round %d after the resume, want B0", stopAt, root.Info.Round)
		}
		if err := d.db.Close(); err != nil {
			t.Fatal(err)
		}

		// Restart again: nothing left to resume; the node syncs on.
		d = openDurable(t, w, path)
		if d.target != nil {
			t.Fatalf("stop at chunk %d: sync target still recovered after the resume", stopAt)
		}
		if d.store.Root().Block.ID != w.nodes[n-3].Block.ID {
			t.Fatalf("stop at chunk %d: recovered root of round %d, want B0", stopAt, d.store.Root().Block.Round())
		}
		checkSameLedger(t, w, d)
		if err := d.manager(t, w, cfg).SyncTo(testCtx(t), w.syncInfo(), w.author()); err != nil {
			t.Fatalf("stop at chunk %d: sync after the restart: %v", stopAt, err)
		}
		w.checkSynced(t, &d.node)
	}
}

// checkSameLedger fails t unless d's ledger is the server's: commit,
// version, root and the state of every key written.
func checkSameLedger(t *testing.T, w *world, d *durableNode) {
	t.Helper()
	if got, want := d.ledger.Committed(), w.server.ledger.Committed(); got != want {
		t.Fatalf("committed round %d version %d, server round %d version %d", got.Round, got.Version, want.Round, want.Version)
	}
	if got, want := d.ledger.Version(), w.server.ledger.Version(); got != want {
		t.Fatalf("version %d, server %d", got, want)
	}
	if got, want := d.ledger.Root(), w.server.ledger.Root(); got != want {
		t.Fatalf("root %s, server %s", got.Short(), want.Short())
	}
	checked := 0
	for _, nd := range w.nodes {
		if nd.Info.Version > w.server.ledger.Version() {
			break
		}
		for _, tx := range nd.Block.Payload() {
			key, _, err := chain.DecodeKV(tx)
			if err != nil {
				t.Fatal(err)
			}
			got, ok, err := d.ledger.Get(key)
			want, wok, werr := w.server.ledger.Get(key)
			if err != nil || werr != nil || ok != wok || !bytes.Equal(got, want) {
				t.Fatalf("key %x: %x %v %v, server %x %v %v", key, got, ok, err, want, wok, werr)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no key checked")
	}
}
