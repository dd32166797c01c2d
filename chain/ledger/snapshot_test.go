package ledger_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/chain/statetree"
	"github.com/p2pnode/p2pnode/chain/store"
)

// snapChain is a server ledger over a bbolt store that committed a chain,
// settled: the ledger whose committed state a client restores.
type snapChain struct {
	v        *chaintest.Validators
	b        *chaintest.Builder
	nodes    []*chaintest.Node // nodes[:len-2] are committed
	server   *ledger.Ledger
	target   *chain.LedgerInfoWithSignatures // the server's committed ledger info
	frontier []chain.Hash                    // the compact range of [0, V)
	txs      [][]byte                        // the transactions of [0, V)
}

// openSnapStore opens the store at path and the ledger on it; the store is
// closed when the test ends (closing twice is fine).
func openSnapStore(t testing.TB, path string, g *chain.Genesis) (*store.Store, *ledger.Ledger) {
	t.Helper()
	st, err := store.Open(path, g)
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	l, err := ledger.New(st, g)
	if err != nil {
		t.Fatalf("ledger.New: %v", err)
	}
	return st, l
}

// newSnapChain builds blocks blocks of txsPerBlock key/value transactions
// and commits all but the last two into a server ledger over a store.
func newSnapChain(t testing.TB, seed uint64, blocks, txsPerBlock int) *snapChain {
	t.Helper()
	v := chaintest.NewValidators(seed, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: txsPerBlock, TxSize: 40, Seed: seed})
	c := &snapChain{v: v, b: b, nodes: b.Extend(b.Genesis(), blocks)}
	_, c.server = openSnapStore(t, filepath.Join(t.TempDir(), "server.db"), v.Genesis)
	execute(t, c.server, c.nodes...)
	for i := 0; i+2 < len(c.nodes); i++ {
		if err := c.server.Commit([]*chain.Block{c.nodes[i].Block}, c.nodes[i+2].QC.LedgerInfo()); err != nil {
			t.Fatalf("server Commit block %d: %v", i, err)
		}
		c.txs = append(c.txs, c.nodes[i].Block.Payload()...)
	}
	if err := c.server.Settle(context.Background()); err != nil {
		t.Fatalf("server Settle: %v", err)
	}
	c.target = c.server.LedgerInfo()
	var err error
	if c.frontier, err = c.server.FrontierAt(c.version()); err != nil {
		t.Fatalf("FrontierAt(%d): %v", c.version(), err)
	}
	return c
}

func (c *snapChain) version() uint64 { return c.target.LedgerInfo.CommitInfo.Version }

// chunk returns the server's chunk of the target's state from start.
func (c *snapChain) chunk(t testing.TB, start chain.Hash, n int) *ledger.StateChunk {
	t.Helper()
	sc, err := c.server.StateChunk(c.version(), start, n)
	if err != nil || sc == nil {
		t.Fatalf("server StateChunk(%d, %s, %d) = %v, %v", c.version(), start.Short(), n, sc, err)
	}
	return sc
}

// addChunks adds up to k chunks of n leaves from the server (all of them
// if k < 0) and returns how many it added.
func (c *snapChain) addChunks(t testing.TB, r *ledger.SnapshotRestore, n, k int) int {
	t.Helper()
	added := 0
	for ; k < 0 || added < k; added++ {
		next, more := r.Next()
		if !more {
			break
		}
		if err := r.Add(c.chunk(t, next, n)); err != nil {
			t.Fatalf("Add chunk %d at %s: %v", added, next.Short(), err)
		}
	}
	return added
}

// restore restores the target into l in chunks of n leaves and returns
// how many chunks it took.
func (c *snapChain) restore(t testing.TB, l *ledger.Ledger, n int) int {
	t.Helper()
	r, err := l.RestoreSnapshot(c.target, c.frontier)
	if err != nil {
		t.Fatalf("RestoreSnapshot: %v", err)
	}
	added := c.addChunks(t, r, n, -1)
	if !r.Complete() || r.Leaves() != uint64(len(model(c.txs))) {
		t.Fatalf("after %d chunks: complete %v, %d leaves, want %d", added, r.Complete(), r.Leaves(), len(model(c.txs)))
	}
	if err := r.Finish(); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	return added
}

// checkRestored checks that l is the snapshot of c's target: version,
// accumulator, state tree, state and proofs, and no history below.
func (c *snapChain) checkRestored(t testing.TB, l *ledger.Ledger) {
	t.Helper()
	info, v := c.target.LedgerInfo.CommitInfo, c.version()
	if l.Version() != v || l.Committed() != info || l.TreeVersion() != v {
		t.Fatalf("restored ledger: version %d, tree %d, committed %+v; want %d, %+v", l.Version(), l.TreeVersion(), l.Committed(), v, info)
	}
	if l.Root() != info.ExecutedStateID {
		t.Fatalf("Root() = %s, want %s", l.Root().Short(), info.ExecutedStateID.Short())
	}
	if li := l.LedgerInfo(); li == nil || li.LedgerInfo != c.target.LedgerInfo {
		t.Fatalf("LedgerInfo() = %v, want the target", li)
	}
	if root, err := l.StateRoot(); err != nil || root != info.StateRoot {
		t.Fatalf("StateRoot() = %s, %v; want %s", root.Short(), err, info.StateRoot.Short())
	}
	if fv, fr := l.Frontier(); fv != v || !slices.Equal(fr, c.frontier) {
		t.Fatalf("Frontier() = %d, %d hashes; want the snapshot's", fv, len(fr))
	}
	if fr, err := l.FrontierAt(v); err != nil || !slices.Equal(fr, c.frontier) {
		t.Fatalf("FrontierAt(%d) = %v, %v", v, fr, err)
	}
	want := model(c.txs)
	keys := keysOf(c.txs)
	checkState(t, l, want, keys)
	checkStateProofs(t, c.v.Verifier, l, want, keys)
	// No history below the snapshot.
	for _, start := range []uint64{0, v / 2, v - 1} {
		if _, err := l.GetChunk(start, v, 10); !errors.Is(err, ledger.ErrPruned) {
			t.Fatalf("GetChunk(%d, %d) = %v, want ErrPruned", start, v, err)
		}
	}
	if _, ok, err := l.TxProof(chain.TxLeafHash(c.txs[0])); ok || err != nil {
		t.Fatalf("TxProof of version 0 below the snapshot = %v, %v; want not found", ok, err)
	}
	if l.CanRestoreSnapshot() {
		t.Fatal("a restored ledger can restore a snapshot again")
	}
	// It serves the snapshot as the server does.
	mine, err := l.StateChunk(v, chain.Hash{}, ledger.MaxSnapshotLeaves)
	if err != nil {
		t.Fatalf("restored StateChunk: %v", err)
	}
	theirs := c.chunk(t, chain.Hash{}, ledger.MaxSnapshotLeaves)
	if !slices.EqualFunc(mine.Leaves, theirs.Leaves, func(a, b statetree.KV) bool {
		return bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Value, b.Value)
	}) || len(mine.Leaves) != len(want) {
		t.Fatalf("restored ledger serves %d leaves, the server %d", len(mine.Leaves), len(theirs.Leaves))
	}
}

// checkStateProofs checks that the state proof of every key verifies as a
// client checks it, with the value of want or as absent.
func checkStateProofs(t testing.TB, vf *chain.Verifier, l *ledger.Ledger, want map[string][]byte, keys [][]byte) {
	t.Helper()
	for _, k := range keys {
		p, err := l.StateProof(k)
		if err != nil {
			t.Fatalf("StateProof(%x): %v", k, err)
		}
		w, ok := want[string(k)]
		if p.Present != ok || !bytes.Equal(p.Value, w) {
			t.Fatalf("StateProof(%x) = %x, %v; want %x, %v", k, p.Value, p.Present, w, ok)
		}
		if err := ledger.VerifyStateProof(vf, k, p); err != nil {
			t.Fatalf("VerifyStateProof(%x): %v", k, err)
		}
	}
}

// TestSnapshotRestore: a fresh ledger over a store restores a server's
// committed state in small chunks, is then the server's ledger at that
// version with no history below, survives a reopen, and goes on executing
// and committing the blocks that follow.
func TestSnapshotRestore(t *testing.T) {
	c := newSnapChain(t, 5, 14, 3) // V = 36
	path := filepath.Join(t.TempDir(), "client.db")
	st, l := openSnapStore(t, path, c.v.Genesis)
	if !l.CanRestoreSnapshot() {
		t.Fatal("a fresh ledger over a store cannot restore a snapshot")
	}
	if n := c.restore(t, l, 4); n < 5 {
		t.Fatalf("restored in %d chunks, want many", n)
	}
	c.checkRestored(t, l)
	if p, err := st.Snapshot(); p != nil || err != nil {
		t.Fatalf("snapshot record after Finish: %v, %v", p, err)
	}

	// Durable: a reopened store is the same ledger.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, l = openSnapStore(t, path, c.v.Genesis)
	c.checkRestored(t, l)
	if _, err := l.RestoreSnapshot(c.target, c.frontier); !errors.Is(err, ledger.ErrNotEmpty) {
		t.Fatalf("RestoreSnapshot on the restored ledger = %v, want ErrNotEmpty", err)
	}

	// The chain goes on over the restored tree: the uncommitted blocks
	// and more, each executed to the builder's info.
	k := len(c.nodes) - 2 // nodes[k] is the first uncommitted block
	more := append(slices.Clone(c.nodes[k:]), c.b.Extend(c.nodes[len(c.nodes)-1], 5)...)
	execute(t, l, more...)
	v := c.version()
	txs := slices.Clone(c.txs)
	for i := 0; i+2 < len(more); i++ {
		li := more[i+2].QC.LedgerInfo()
		if err := l.Commit([]*chain.Block{more[i].Block}, li); err != nil {
			t.Fatalf("Commit block %d after the snapshot: %v", i, err)
		}
		txs = append(txs, more[i].Block.Payload()...)
	}
	if err := l.Settle(context.Background()); err != nil {
		t.Fatalf("Settle: %v", err)
	}
	top := l.Committed()
	if top.Version != uint64(len(txs)) || top.Version <= v || l.TreeVersion() != top.Version {
		t.Fatalf("after the commits: committed version %d, tree %d; want %d", top.Version, l.TreeVersion(), len(txs))
	}
	if root, err := l.StateRoot(); err != nil || root != top.StateRoot {
		t.Fatalf("StateRoot() after the commits = %s, %v; want %s", root.Short(), err, top.StateRoot.Short())
	}
	want := model(txs)
	keys := keysOf(txs)
	checkState(t, l, want, keys)
	checkStateProofs(t, c.v.Verifier, l, want, keys)
	// Every transaction from the snapshot on is proved, and the chunks
	// from there verify against the snapshot's frontier.
	for ver := v; ver < top.Version; ver++ {
		h := chain.TxLeafHash(txs[ver])
		p, ok, err := l.TxProof(h)
		if err != nil || !ok || p.Version != ver {
			t.Fatalf("TxProof(version %d) = %v, %v, %v", ver, p, ok, err)
		}
		if err := ledger.VerifyTxProof(c.v.Verifier, h, p); err != nil {
			t.Fatalf("VerifyTxProof(version %d): %v", ver, err)
		}
	}
	ch, err := l.GetChunk(v, top.Version, 100)
	if err != nil {
		t.Fatalf("GetChunk(%d, %d): %v", v, top.Version, err)
	}
	if err := ledger.VerifyChunk(ch, c.frontier, v, top); err != nil {
		t.Fatalf("VerifyChunk from the snapshot: %v", err)
	}
	if _, err := l.GetChunk(v-1, top.Version, 100); !errors.Is(err, ledger.ErrPruned) {
		t.Fatalf("GetChunk below the snapshot = %v, want ErrPruned", err)
	}

	// And once more after a reopen.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	_, l = openSnapStore(t, path, c.v.Genesis)
	if l.Committed() != top {
		t.Fatalf("reopened: committed %+v, want %+v", l.Committed(), top)
	}
	checkState(t, l, want, keys)
}

// TestSnapshotRestoreOneLeafChunks restores with chunks of a single leaf:
// every node is emitted in a chunk of its own or the next.
func TestSnapshotRestoreOneLeafChunks(t *testing.T) {
	c := newSnapChain(t, 6, 9, 5) // V = 35
	_, l := openSnapStore(t, filepath.Join(t.TempDir(), "client.db"), c.v.Genesis)
	if n := c.restore(t, l, 1); n != len(model(c.txs)) {
		t.Fatalf("restored in %d chunks, want one per leaf (%d)", n, len(model(c.txs)))
	}
	c.checkRestored(t, l)
}

// wantVerifyError fails t unless err is a peer fault: a *chain.VerifyError
// with reason one of reasons.
func wantVerifyError(t testing.TB, what string, err error, reasons ...error) {
	t.Helper()
	var ve *chain.VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("%s: error %v is not a *chain.VerifyError", what, err)
	}
	for _, r := range reasons {
		if errors.Is(err, r) {
			return
		}
	}
	t.Fatalf("%s: error %v, want one of %v", what, err, reasons)
}

func cloneStateChunk(c *ledger.StateChunk) *ledger.StateChunk {
	out := &ledger.StateChunk{Proof: ledger.StateRangeProof{
		FirstDepth: c.Proof.FirstDepth, LastDepth: c.Proof.LastDepth,
		Left: slices.Clone(c.Proof.Left), Right: slices.Clone(c.Proof.Right),
	}}
	for _, kv := range c.Leaves {
		out.Leaves = append(out.Leaves, statetree.KV{Key: bytes.Clone(kv.Key), Value: bytes.Clone(kv.Value)})
	}
	return out
}

// incHash returns h+1 (h is not all ones).
func incHash(h chain.Hash) chain.Hash {
	for i := len(h) - 1; i >= 0; i-- {
		h[i]++
		if h[i] != 0 {
			break
		}
	}
	return h
}

// TestSnapshotRestoreRejects: forged chunks fail with the typed peer
// faults and leave the restore as it was, in memory and in the store; the
// honest chunk is then accepted and the restore completes.
func TestSnapshotRestoreRejects(t *testing.T) {
	c := newSnapChain(t, 7, 14, 3)
	st, l := openSnapStore(t, filepath.Join(t.TempDir(), "client.db"), c.v.Genesis)
	r, err := l.RestoreSnapshot(c.target, c.frontier)
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	first := c.chunk(t, chain.Hash{}, n)
	if err := r.Add(first); err != nil {
		t.Fatalf("Add first chunk: %v", err)
	}
	next, _ := r.Next()
	honest := c.chunk(t, next, n)
	if len(honest.Leaves) != n || len(honest.Proof.Right) == 0 || len(honest.Proof.Left) == 0 {
		t.Fatalf("chunk 2 has %d leaves, %d left and %d right siblings: too small a test", len(honest.Leaves), len(honest.Proof.Left), len(honest.Proof.Right))
	}
	// The chunk the server gives from just past the honest chunk's first
	// leaf: leaves between the two chunks are missing.
	skipping := c.chunk(t, incHash(statetree.KeyHash(honest.Leaves[0].Key)), n)

	cases := []struct {
		name    string
		chunk   func() *ledger.StateChunk
		reasons []error
	}{
		{"tampered value", func() *ledger.StateChunk {
			x := cloneStateChunk(honest)
			x.Leaves[1].Value = append(x.Leaves[1].Value, 1)
			return x
		}, []error{statetree.ErrWrongRoot}},
		{"tampered key", func() *ledger.StateChunk {
			x := cloneStateChunk(honest)
			x.Leaves[n-1].Key = append(x.Leaves[n-1].Key, 1)
			return x
		}, []error{statetree.ErrWrongRoot, statetree.ErrOutOfOrder, statetree.ErrMalformedProof}},
		{"dropped inner leaf", func() *ledger.StateChunk {
			x := cloneStateChunk(honest)
			x.Leaves = slices.Delete(x.Leaves, 1, 2)
			return x
		}, []error{statetree.ErrGap, statetree.ErrWrongRoot}},
		{"dropped first leaf (gap between chunks)", func() *ledger.StateChunk { return cloneStateChunk(skipping) },
			[]error{statetree.ErrGap}},
		{"tampered right sibling", func() *ledger.StateChunk {
			x := cloneStateChunk(honest)
			x.Proof.Right[0][0] ^= 1
			return x
		}, []error{statetree.ErrWrongRoot}},
		{"tampered left sibling", func() *ledger.StateChunk {
			x := cloneStateChunk(honest)
			x.Proof.Left[0][0] ^= 1
			return x
		}, []error{statetree.ErrGap}},
		{"swapped leaves", func() *ledger.StateChunk {
			x := cloneStateChunk(honest)
			x.Leaves[1], x.Leaves[2] = x.Leaves[2], x.Leaves[1]
			return x
		}, []error{statetree.ErrOutOfOrder}},
		{"duplicate of the previous chunk", func() *ledger.StateChunk { return cloneStateChunk(first) },
			[]error{statetree.ErrOutOfOrder}},
		{"chunk overlapping the previous one", func() *ledger.StateChunk {
			x := cloneStateChunk(first)
			x.Leaves = x.Leaves[len(x.Leaves)-1:]
			return x
		}, []error{statetree.ErrOutOfOrder}},
		{"depth past the tree's", func() *ledger.StateChunk {
			x := cloneStateChunk(honest)
			x.Proof.LastDepth = statetree.MaxDepth + 1
			return x
		}, []error{statetree.ErrMalformedProof}},
		{"extra right sibling", func() *ledger.StateChunk {
			x := cloneStateChunk(honest)
			x.Proof.Right = append(x.Proof.Right, chain.Hash{})
			return x
		}, []error{statetree.ErrMalformedProof}},
		{"no leaves", func() *ledger.StateChunk {
			x := cloneStateChunk(honest)
			x.Leaves = nil
			return x
		}, []error{statetree.ErrEmptyRange}},
		{"nil chunk", func() *ledger.StateChunk { return nil }, []error{statetree.ErrEmptyRange}},
		{"too many leaves", func() *ledger.StateChunk {
			return &ledger.StateChunk{Leaves: make([]statetree.KV, ledger.MaxSnapshotLeaves+1)}
		}, []error{ledger.ErrChunkLimits}},
	}
	before, err := st.Snapshot()
	if err != nil || before == nil {
		t.Fatalf("snapshot record after one chunk: %v, %v", before, err)
	}
	for _, tc := range cases {
		err := r.Add(tc.chunk())
		wantVerifyError(t, tc.name, err, tc.reasons...)
		if got, _ := r.Next(); got != next || r.Leaves() != uint64(len(first.Leaves)) {
			t.Fatalf("%s: restore moved to %s, %d leaves", tc.name, got.Short(), r.Leaves())
		}
		after, err := st.Snapshot()
		if err != nil || after == nil || !bytes.Equal(after.Restorer, before.Restorer) || after.Leaves != before.Leaves {
			t.Fatalf("%s: stored restore changed: %v", tc.name, err)
		}
	}
	if err := r.Finish(); err == nil {
		t.Fatal("Finish of an incomplete restore succeeded")
	}
	// Still usable: the honest chunks complete it.
	if err := r.Add(honest); err != nil {
		t.Fatalf("Add the honest chunk after the forgeries: %v", err)
	}
	c.addChunks(t, r, n, -1)
	wantVerifyError(t, "chunk after the last", r.Add(cloneStateChunk(honest)), statetree.ErrOutOfOrder)
	if err := r.Finish(); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	c.checkRestored(t, l)
	if err := r.Add(honest); err == nil {
		t.Fatal("Add after Finish succeeded")
	}
}

// TestSnapshotRestoreTargets: what RestoreSnapshot refuses, and a
// restore of a wrong target (its state root not the server's) that never
// disturbs the stored restore of the right one.
func TestSnapshotRestoreTargets(t *testing.T) {
	c := newSnapChain(t, 8, 12, 3)
	info := c.target.LedgerInfo.CommitInfo

	// Not over a store, not at genesis.
	mem, _ := newLedger(t, c.v.Genesis)
	if _, err := mem.RestoreSnapshot(c.target, c.frontier); !errors.Is(err, ledger.ErrSnapshotUnsupported) {
		t.Fatalf("RestoreSnapshot over MemStorage = %v, want ErrSnapshotUnsupported", err)
	}
	if mem.CanRestoreSnapshot() {
		t.Fatal("a ledger over MemStorage can restore a snapshot")
	}
	if _, err := c.server.RestoreSnapshot(c.target, c.frontier); !errors.Is(err, ledger.ErrNotEmpty) {
		t.Fatalf("RestoreSnapshot on the server = %v, want ErrNotEmpty", err)
	}
	if c.server.CanRestoreSnapshot() {
		t.Fatal("a committed ledger can restore a snapshot")
	}

	st, l := openSnapStore(t, filepath.Join(t.TempDir(), "client.db"), c.v.Genesis)
	if _, err := l.RestoreSnapshot(c.target, nil); !errors.Is(err, ledger.ErrNoSnapshot) {
		t.Fatalf("RestoreSnapshot without a frontier or a restore = %v, want ErrNoSnapshot", err)
	}
	if _, err := l.RestoreSnapshot(nil, c.frontier); err == nil {
		t.Fatal("RestoreSnapshot(nil target) succeeded")
	}
	// Wrong frontiers.
	bad := slices.Clone(c.frontier)
	bad[0][0] ^= 1
	for name, f := range map[string][]chain.Hash{
		"tampered": bad,
		"short":    c.frontier[:len(c.frontier)-1],
		"long":     append(slices.Clone(c.frontier), chain.Hash{}),
		"empty":    {},
	} {
		_, err := l.RestoreSnapshot(c.target, f)
		wantVerifyError(t, "frontier "+name, err, ledger.ErrSnapshotFrontier)
	}
	if err := ledger.VerifySnapshotFrontier(c.frontier, info); err != nil {
		t.Fatalf("VerifySnapshotFrontier of the server's frontier: %v", err)
	}

	// The right target, two chunks in.
	r, err := l.RestoreSnapshot(c.target, c.frontier)
	if err != nil {
		t.Fatal(err)
	}
	c.addChunks(t, r, 3, 2)
	next, _ := r.Next()

	// A target whose state root is not the server's (signatures are the
	// caller's to check): its frontier verifies, its chunks never do.
	wrong := *c.target
	wrong.LedgerInfo.CommitInfo.StateRoot[0] ^= 1
	wr, err := l.RestoreSnapshot(&wrong, c.frontier)
	if err != nil {
		t.Fatalf("RestoreSnapshot(wrong root) = %v", err)
	}
	if got, _ := wr.Next(); got != (chain.Hash{}) {
		t.Fatalf("a new restore starts at %s", got.Short())
	}
	wantVerifyError(t, "chunk against a wrong root", wr.Add(c.chunk(t, chain.Hash{}, 3)), statetree.ErrWrongRoot)
	// A target at version 0 is not a snapshot.
	zero := *c.target
	zero.LedgerInfo.CommitInfo.Version = 0
	if _, err := l.RestoreSnapshot(&zero, nil); !errors.Is(err, ledger.ErrBadRequest) {
		t.Fatalf("RestoreSnapshot at version 0 = %v, want ErrBadRequest", err)
	}

	// The right one resumes where it was, from the store.
	r, err = l.RestoreSnapshot(c.target, nil)
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if got, more := r.Next(); got != next || !more {
		t.Fatalf("resumed at %s, want %s", got.Short(), next.Short())
	}
	c.addChunks(t, r, 3, -1)
	if err := r.Finish(); err != nil {
		t.Fatal(err)
	}
	c.checkRestored(t, l)
	if p, err := st.Snapshot(); p != nil || err != nil {
		t.Fatalf("snapshot record after Finish: %v, %v", p, err)
	}
}

// TestSnapshotRestoreSwitchesTarget: a restore of an older ledger info
// in progress is discarded once the first chunk of a newer one is stored.
func TestSnapshotRestoreSwitchesTarget(t *testing.T) {
	c := newSnapChain(t, 9, 12, 3)
	// The server's previous commit is a snapshot too: its tree is stored.
	old := &snapChain{v: c.v, server: c.server, target: c.nodes[len(c.nodes)-4].QC.LedgerInfo()}
	var err error
	if old.frontier, err = c.server.FrontierAt(old.version()); err != nil {
		t.Fatal(err)
	}
	if old.version() >= c.version() {
		t.Fatalf("old target at %d, new at %d", old.version(), c.version())
	}
	st, l := openSnapStore(t, filepath.Join(t.TempDir(), "client.db"), c.v.Genesis)
	r, err := l.RestoreSnapshot(old.target, old.frontier)
	if err != nil {
		t.Fatal(err)
	}
	old.addChunks(t, r, 2, 3)
	// The old restore's first leaf is stored, at some depth.
	firstLeaf := statetree.KeyHash(old.chunk(t, chain.Hash{}, 1).Leaves[0].Key)
	oldLeaf, ok := leafNodeKey(st, old.version(), firstLeaf)
	if !ok {
		t.Fatal("the old restore's first leaf is not stored")
	}

	r, err = l.RestoreSnapshot(c.target, c.frontier)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := st.Snapshot(); err != nil || p == nil || p.LedgerInfo.LedgerInfo != old.target.LedgerInfo {
		t.Fatalf("the old restore is gone before a chunk of the new one is stored: %v, %v", p, err)
	}
	c.addChunks(t, r, 2, 1)
	if p, err := st.Snapshot(); err != nil || p == nil || p.LedgerInfo.LedgerInfo != c.target.LedgerInfo {
		t.Fatalf("snapshot record after the new target's first chunk: %v, %v", p, err)
	}
	if _, err := l.RestoreSnapshot(old.target, nil); !errors.Is(err, ledger.ErrNoSnapshot) {
		t.Fatalf("resuming the discarded restore = %v, want ErrNoSnapshot", err)
	}
	if _, err := st.Node(oldLeaf); !errors.Is(err, statetree.ErrNodeNotFound) {
		t.Fatalf("a node of the discarded restore is still stored: %v", err)
	}
	c.addChunks(t, r, 2, -1)
	if err := r.Finish(); err != nil {
		t.Fatal(err)
	}
	c.checkRestored(t, l)
}

// leafNodeKey returns the key of the leaf node of key hash kh in the tree
// of version, found by trying every depth.
func leafNodeKey(r statetree.NodeReader, version uint64, kh chain.Hash) (statetree.NodeKey, bool) {
	for d := 0; d <= statetree.MaxDepth; d++ {
		p := kh
		for i := d; i < statetree.MaxDepth; i++ {
			p[i/8] &^= 0x80 >> (i % 8)
		}
		k := statetree.NodeKey{Version: version, Depth: uint16(d), Path: p}
		if n, err := r.Node(k); err == nil && n.Kind == statetree.KindLeaf && n.Leaf.KeyHash == kh {
			return k, true
		}
	}
	return statetree.NodeKey{}, false
}

// TestSnapshotRestoreResume: a restore stopped after k chunks resumes
// after a reopen of the store, without a frontier, at the same Next, and
// finishes to the same ledger, for every k.
func TestSnapshotRestoreResume(t *testing.T) {
	c := newSnapChain(t, 10, 10, 3)
	const n = 3
	chunks := (len(model(c.txs)) + n - 1) / n
	for k := 0; k <= chunks; k++ {
		path := filepath.Join(t.TempDir(), "client.db")
		st, l := openSnapStore(t, path, c.v.Genesis)
		r, err := l.RestoreSnapshot(c.target, c.frontier)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.addChunks(t, r, n, k); got != k {
			t.Fatalf("k=%d: added %d chunks", k, got)
		}
		next, more := r.Next()
		leaves := r.Leaves()
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		st, l = openSnapStore(t, path, c.v.Genesis)
		if l.Version() != 0 || !l.CanRestoreSnapshot() {
			t.Fatalf("k=%d: reopened mid-restore at version %d", k, l.Version())
		}
		r, err = l.RestoreSnapshot(c.target, nil)
		if k == 0 {
			if !errors.Is(err, ledger.ErrNoSnapshot) {
				t.Fatalf("k=0: resume with nothing stored = %v, want ErrNoSnapshot", err)
			}
			r, err = l.RestoreSnapshot(c.target, c.frontier)
		}
		if err != nil {
			t.Fatalf("k=%d: resume: %v", k, err)
		}
		if got, gotMore := r.Next(); got != next || gotMore != more || r.Leaves() != leaves {
			t.Fatalf("k=%d: resumed at %s (%v), %d leaves; stopped at %s (%v), %d leaves", k, got.Short(), gotMore, r.Leaves(), next.Short(), more, leaves)
		}
		if got := c.addChunks(t, r, n, -1); got != chunks-k {
			t.Fatalf("k=%d: %d chunks after the resume, want %d", k, got, chunks-k)
		}
		if err := r.Finish(); err != nil {
			t.Fatalf("k=%d: Finish: %v", k, err)
		}
		c.checkRestored(t, l)
		_ = st.Close()
	}
}

// FuzzSnapshotProgress decodes a snapshot record as the store does and
// resumes its restorer as the ledger does: neither may panic, and a
// restorer position that decodes encodes back to the same bytes (the
// decoding is strict).
func FuzzSnapshotProgress(f *testing.F) {
	c := newSnapChain(f, 12, 6, 3)
	dir := f.TempDir()
	st, l := openSnapStore(f, filepath.Join(dir, "client.db"), c.v.Genesis)
	r, err := l.RestoreSnapshot(c.target, c.frontier)
	if err != nil {
		f.Fatal(err)
	}
	for range 3 {
		c.addChunks(f, r, 2, 1)
		p, err := st.Snapshot()
		if err != nil || p == nil {
			f.Fatalf("Snapshot: %v, %v", p, err)
		}
		enc, err := chain.Encode(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
		f.Add(enc[:len(enc)-1])
		mid := slices.Clone(enc)
		mid[len(mid)-len(p.Restorer)/2] ^= 0x10
		f.Add(mid)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var p ledger.SnapshotProgress
		if err := chain.Decode(data, 1<<20, &p); err != nil {
			return
		}
		if p.LedgerInfo != nil {
			_ = ledger.VerifySnapshotFrontier(p.Frontier, p.LedgerInfo.LedgerInfo.CommitInfo)
		}
		r, err := statetree.ResumeRestorer(p.Restorer)
		if err != nil {
			if !errors.Is(err, statetree.ErrCorrupt) {
				t.Fatalf("ResumeRestorer error %v is not ErrCorrupt", err)
			}
			return
		}
		b, err := r.MarshalBinary()
		if err != nil || !bytes.Equal(b, p.Restorer) {
			t.Fatalf("restorer %x resumes and encodes to %x (%v)", p.Restorer, b, err)
		}
		r.Last()
		r.Complete()
	})
}
