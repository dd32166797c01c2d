package syncer_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/blockstore"
	"github.com/p2pnode/p2pnode/chain/blocktree"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/chain/statetree"
	"github.com/p2pnode/p2pnode/chain/store"
	"github.com/p2pnode/p2pnode/protocol"
	"github.com/p2pnode/p2pnode/syncer"
)

// newStoreNode returns a node at genesis over a bbolt store at path, the
// storage that can restore a snapshot.
func newStoreNode(t testing.TB, v *chaintest.Validators, path string) *node {
	t.Helper()
	st, err := store.Open(path, v.Genesis)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	l, err := ledger.New(st, v.Genesis)
	if err != nil {
		t.Fatal(err)
	}
	s, err := blockstore.New(l, st, blocktree.GenesisRoot(v.Genesis), nil, nil, blockstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return &node{ledger: l, store: s}
}

// snapshotConfig fast-forwards by snapshot in chunks of 7 leaves.
func snapshotConfig() syncer.Config {
	cfg := syncer.DefaultConfig()
	cfg.FastForwardRounds = 5
	cfg.StateChunkLeaves = 7
	return cfg
}

// snapshotClient returns a client over a bbolt store and its manager.
func (w *world) snapshotClient(t testing.TB, cfg syncer.Config) (*node, *syncer.Manager) {
	t.Helper()
	c := newStoreNode(t, w.v, filepath.Join(t.TempDir(), "client.db"))
	m, err := syncer.New(c.store, w.net, w.v.Verifier, "client", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, m
}

// checkState fails t unless c's ledger holds the server's state, settled,
// with no history below the snapshot.
func (w *world) checkState(t testing.TB, c *node) {
	t.Helper()
	if got, want := c.ledger.TreeVersion(), w.server.ledger.Committed().Version; got != want {
		t.Fatalf("client state tree at version %d, want %d", got, want)
	}
	root, err := c.ledger.StateRoot()
	if err != nil || root != w.server.ledger.Committed().StateRoot {
		t.Fatalf("client state root %s (%v), want %s", root.Short(), err, w.server.ledger.Committed().StateRoot.Short())
	}
	// Every key the chain wrote reads back as the server has it.
	for _, n := range w.nodes[1:] {
		for _, tx := range n.Block.Payload() {
			k, _, err := chain.DecodeKV(tx)
			if err != nil {
				continue
			}
			want, wantOK, _ := w.server.ledger.Get(k)
			got, ok, err := c.ledger.Get(k)
			if err != nil || ok != wantOK || string(got) != string(want) {
				t.Fatalf("key %x: got %x, %v, %v; want %x, %v", k, got, ok, err, want, wantOK)
			}
		}
	}
}

// TestSnapshotSyncRestoresTheState: a fresh node fast-forwards by snapshot
// sync, with the state in many chunks; it then holds the server's state
// and ledger and keeps executing the blocks that follow.
func TestSnapshotSyncRestoresTheState(t *testing.T) {
	v := chaintest.NewValidators(11, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 4, TxSize: 64, Seed: 3})
	nodes := b.Extend(b.Genesis(), 40)
	w := newWorldFrom(t, v, nodes)
	c, m := w.snapshotClient(t, snapshotConfig())
	w.syncAll(t, c, m)
	w.checkState(t, c)
	if st := m.Stats(); st.Snapshots != 1 || st.TxsSynced != 0 {
		t.Fatalf("stats: %d snapshots, %d transactions replayed; want one snapshot and none", st.Snapshots, st.TxsSynced)
	}

	// The chain goes on: the node executes the new blocks over the
	// restored tree.
	more := b.Extend(nodes[len(nodes)-1], 6)
	if err := w.server.store.InsertChain(chaintest.Blocks(more)); err != nil {
		t.Fatal(err)
	}
	if err := w.server.store.InsertQC(more[len(more)-1].QC); err != nil {
		t.Fatal(err)
	}
	if err := w.server.ledger.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.nodes = append(w.nodes, more...)
	w.syncAll(t, c, m)
	if err := c.ledger.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.checkState(t, c)
}

// TestSnapshotSyncBansForgers: peers that tamper with a value, drop a
// leaf, send a wrong frontier, no chunk where leaves are left, or more
// leaves than asked are caught and banned; the restore completes from the
// honest peer.
func TestSnapshotSyncBansForgers(t *testing.T) {
	w := newWorld(t, 6, 40, 4)
	forge := map[int]func(*protocol.StateResponse){
		0: func(r *protocol.StateResponse) { // a value changed
			if r.Chunk != nil && len(r.Chunk.Leaves) > 0 {
				r.Chunk.Leaves[0].Value = append([]byte{1}, r.Chunk.Leaves[0].Value...)
			}
		},
		1: func(r *protocol.StateResponse) { // a leaf dropped
			if r.Chunk != nil && len(r.Chunk.Leaves) > 2 {
				r.Chunk.Leaves = append(r.Chunk.Leaves[:1], r.Chunk.Leaves[2:]...)
			}
		},
		2: func(r *protocol.StateResponse) { // a wrong frontier, or a proof sibling changed
			if r.Frontier != nil {
				r.Frontier[0][0] ^= 1
			} else if r.Chunk != nil && len(r.Chunk.Proof.Right) > 0 {
				r.Chunk.Proof.Right[0][0] ^= 1
			}
		},
		3: func(r *protocol.StateResponse) { // no leaves after the first chunk
			if r.Frontier == nil {
				r.Chunk = nil
			}
		},
		4: func(r *protocol.StateResponse) { // more leaves than asked
			if r.Chunk != nil {
				r.Chunk.Leaves = append(r.Chunk.Leaves, r.Chunk.Leaves...)
			}
		},
	}
	var forged atomic.Int64
	for i, f := range forge {
		w.net.Peer(w.id(i)).OnState = func(_ context.Context, _ protocol.StateRequest, honest func() *protocol.StateResponse) (*protocol.StateResponse, error) {
			r := honest()
			if r.Status == protocol.StatusSucceeded {
				forged.Add(1)
				f(r)
			}
			return r, nil
		}
	}
	c, m := w.snapshotClient(t, snapshotConfig())
	w.syncAll(t, c, m)
	w.checkState(t, c)
	if forged.Load() == 0 {
		t.Fatal("no forged answer was sent: the test proves nothing")
	}
	for i := range forge {
		if m.Scores().Count(w.id(i), syncer.OutcomeInvalid) == 0 {
			t.Errorf("forger %d not penalised", i)
		}
	}
}

// TestSnapshotSyncResumes: a restore cancelled mid-way resumes, in a new
// manager over the reopened store, from the last chunk stored: no chunk
// before it is asked again.
func TestSnapshotSyncResumes(t *testing.T) {
	w := newWorld(t, 4, 40, 4)
	var asked atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stop atomic.Bool
	for _, id := range w.net.Peers() {
		w.net.Peer(id).OnState = func(_ context.Context, req protocol.StateRequest, honest func() *protocol.StateResponse) (*protocol.StateResponse, error) {
			if stop.Load() {
				return nil, errors.New("killed")
			}
			if asked.Add(1) == 6 {
				stop.Store(true)
				cancel()
			}
			return honest(), nil
		}
	}
	path := filepath.Join(t.TempDir(), "client.db")
	c := newStoreNode(t, w.v, path)
	m, err := syncer.New(c.store, w.net, w.v.Verifier, "client", snapshotConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SyncTo(ctx, w.syncInfo(), w.author()); err == nil {
		t.Fatal("the cancelled sync succeeded")
	}
	p, err := c.ledger.Storage().(ledger.SnapshotStorage).Snapshot()
	if err != nil || p == nil || p.Leaves == 0 {
		t.Fatalf("no restore progress stored: %+v, %v", p, err)
	}

	// The restart asks for nothing before the stored position.
	stop.Store(false)
	var again atomic.Int64
	r, _ := statetree.ResumeRestorer(p.Restorer)
	last, _ := r.Last()
	for _, id := range w.net.Peers() {
		w.net.Peer(id).OnState = func(_ context.Context, req protocol.StateRequest, honest func() *protocol.StateResponse) (*protocol.StateResponse, error) {
			again.Add(1)
			if string(req.Start[:]) <= string(last[:]) {
				t.Errorf("resumed restore asked for %s, at or before the last leaf stored %s", req.Start.Short(), last.Short())
			}
			return honest(), nil
		}
	}
	m2, err := syncer.New(c.store, w.net, w.v.Verifier, "client", snapshotConfig())
	if err != nil {
		t.Fatal(err)
	}
	w.syncAll(t, c, m2)
	w.checkState(t, c)
	if again.Load() == 0 {
		t.Fatal("the resumed sync asked for nothing")
	}
}

// TestSnapshotSyncFallsBackToReplay: when no peer keeps the state tree of
// the target, the fast-forward replays the target's transactions instead.
func TestSnapshotSyncFallsBackToReplay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 4, 40, 4)
		for _, id := range w.net.Peers() {
			w.net.Peer(id).OnState = func(context.Context, protocol.StateRequest, func() *protocol.StateResponse) (*protocol.StateResponse, error) {
				return &protocol.StateResponse{Status: protocol.StatusPruned}, nil
			}
		}
		c, m := w.snapshotClient(t, snapshotConfig())
		w.syncAll(t, c, m)
		if st := m.Stats(); st.Snapshots != 0 || st.TxsSynced == 0 {
			t.Fatalf("stats: %d snapshots, %d transactions replayed; want a replay", st.Snapshots, st.TxsSynced)
		}
	})
}
