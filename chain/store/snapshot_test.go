package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/transparency-dev/merkle/compact"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/chain/statetree"
	"github.com/p2pnode/p2pnode/chain/store"
)

// snapSource is a server ledger over a store that committed a chain whose
// first m blocks are a snapshot of an odd version (27 transactions of
// fresh keys); the blocks after it write some of those keys again and
// fresh ones.
type snapSource struct {
	v        *chaintest.Validators
	nodes    []*chaintest.Node
	m        int // the snapshot holds the transactions of nodes[:m]
	server   *ledger.Ledger
	target   *chain.LedgerInfoWithSignatures // commits nodes[m-1]
	frontier []chain.Hash
	txs      [][]byte // the transactions of every node, in version order
}

func newSnapSource(t *testing.T, seed uint64) *snapSource {
	t.Helper()
	v := chaintest.NewValidators(seed, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxSize: 40, Seed: seed})
	s := &snapSource{v: v, m: 9}
	kv := func(key int, round uint64, i int) []byte {
		tx, err := chain.EncodeKV(fmt.Appendf(nil, "key/%d", key), fmt.Appendf(nil, "seed %d round %d tx %d", seed, round, i))
		if err != nil {
			t.Fatal(err)
		}
		return tx
	}
	fresh := 0
	parent := b.Genesis()
	for round := uint64(1); round <= 17; round++ {
		var txs [][]byte
		if round <= uint64(s.m) { // 3, 4, 2, 3, 4, 2, 3, 4, 2 fresh keys
			for i := range int(round%3) + 2 {
				txs = append(txs, kv(fresh, round, i))
				fresh++
			}
		} else { // two keys of the snapshot again, one fresh
			txs = append(txs, kv((int(round)*5)%27, round, 0), kv((int(round)*5+11)%27, round, 1), kv(fresh, round, 2))
			fresh++
		}
		s.txs = append(s.txs, txs...)
		parent = b.ChildWith(parent, round, v.Leader(round), txs)
		s.nodes = append(s.nodes, parent)
	}
	st := openStore(t, tempPath(t), v.Genesis)
	t.Cleanup(func() { _ = st.Close() })
	s.server = commitThroughLedger(t, st, v.Genesis, s.nodes)
	s.target = s.nodes[s.m+1].QC.LedgerInfo()
	if s.target.LedgerInfo.CommitInfo != s.nodes[s.m-1].Info || s.version() != 27 {
		t.Fatalf("snapshot target %+v, want block %d at version 27", s.target.LedgerInfo.CommitInfo, s.m-1)
	}
	var err error
	if s.frontier, err = s.server.FrontierAt(s.version()); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *snapSource) version() uint64 { return s.target.LedgerInfo.CommitInfo.Version }

// keys returns every key the chain writes, and one it never writes.
func (s *snapSource) keys() [][]byte {
	keys := [][]byte{[]byte("never written")}
	seen := map[string]bool{}
	for _, tx := range s.txs {
		if k, _, err := chain.DecodeKV(tx); err == nil && !seen[string(k)] {
			seen[string(k)] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// state returns the state after the transactions of versions [0, v).
func (s *snapSource) state(v uint64) map[string][]byte {
	m := map[string][]byte{}
	for _, tx := range s.txs[:v] {
		if k, val, err := chain.DecodeKV(tx); err == nil {
			m[string(k)] = val
		}
	}
	return m
}

// snapPut is a snapshot record a restore wrote.
type snapPut struct {
	first chain.Hash
	nodes []statetree.NodeEntry
}

// snapStore is a store that records the snapshot writes it performs and
// "crashes" at one of them, as crashStore does: it performs the first left
// writes, and the next one fails with errCrash, performed first if after.
// left < 0 never crashes.
type snapStore struct {
	*store.Store
	left  int
	after bool
	puts  []snapPut
	last  []statetree.NodeEntry // FinishSnapshot's
}

func (s *snapStore) write(fn func() error) error {
	if s.left == 0 {
		if s.after {
			if err := fn(); err != nil {
				return err
			}
		}
		s.left = -2 // nothing more is written
		return errCrash
	}
	if s.left == -2 {
		return errCrash
	}
	if s.left > 0 {
		s.left--
	}
	return fn()
}

func (s *snapStore) PutSnapshot(p *ledger.SnapshotProgress, first chain.Hash, nodes []statetree.NodeEntry) error {
	return s.write(func() error {
		if err := s.Store.PutSnapshot(p, first, nodes); err != nil {
			return err
		}
		s.puts = append(s.puts, snapPut{first: first, nodes: nodes})
		return nil
	})
}

func (s *snapStore) FinishSnapshot(p *ledger.SnapshotProgress, nodes []statetree.NodeEntry) error {
	return s.write(func() error {
		if err := s.Store.FinishSnapshot(p, nodes); err != nil {
			return err
		}
		s.last = nodes
		return nil
	})
}

// nodeKeys returns the keys of every node the restore wrote.
func (s *snapStore) nodeKeys() []statetree.NodeKey {
	var out []statetree.NodeKey
	for _, p := range s.puts {
		for _, e := range p.nodes {
			out = append(out, e.Key)
		}
	}
	for _, e := range s.last {
		out = append(out, e.Key)
	}
	return out
}

// restore restores s's target into l (over st) in chunks of n leaves,
// resuming a stored restore, and returns the first error.
func (s *snapSource) restore(l *ledger.Ledger, n int) error {
	r, err := l.RestoreSnapshot(s.target, nil)
	if errors.Is(err, ledger.ErrNoSnapshot) {
		r, err = l.RestoreSnapshot(s.target, s.frontier)
	}
	if err != nil {
		return err
	}
	for {
		next, more := r.Next()
		if !more {
			break
		}
		c, err := s.server.StateChunk(s.version(), next, n)
		if err != nil {
			return err
		}
		if err := r.Add(c); err != nil {
			return err
		}
	}
	return r.Finish()
}

// newClient opens a fresh store at path with the snapshot's committed
// 3-chain saved (as a fast-forward saves it before it restores), and a
// ledger on it through a snapStore.
func (s *snapSource) newClient(t *testing.T, path string) (*snapStore, *ledger.Ledger) {
	t.Helper()
	st := openStore(t, path, s.v.Genesis)
	t.Cleanup(func() { _ = st.Close() })
	saveNodes(t, st, s.nodes[s.m-1:s.m+2]...)
	return s.reopen(t, st)
}

func (s *snapSource) reopen(t *testing.T, st *store.Store) (*snapStore, *ledger.Ledger) {
	t.Helper()
	w := &snapStore{Store: st, left: -1}
	l, err := ledger.New(w, s.v.Genesis)
	if err != nil {
		t.Fatalf("ledger.New: %v", err)
	}
	return w, l
}

// extend executes the blocks after the snapshot on l and commits them as
// the server did; it returns the committed version.
func (s *snapSource) extend(t *testing.T, st *store.Store, l *ledger.Ledger) uint64 {
	t.Helper()
	for i := s.m; i < len(s.nodes); i++ {
		n := s.nodes[i]
		if i >= s.m+2 {
			saveNodes(t, st, n)
		}
		info, err := l.Execute(n.Block)
		if err != nil || info != n.Info {
			t.Fatalf("Execute block %d after the snapshot = %+v, %v; want %+v", i, info, err, n.Info)
		}
		if i-2 >= s.m {
			if err := l.Commit([]*chain.Block{s.nodes[i-2].Block}, n.QC.LedgerInfo()); err != nil {
				t.Fatalf("Commit block %d after the snapshot: %v", i-2, err)
			}
		}
	}
	if c := l.Committed(); c != s.server.Committed() || l.TreeVersion() != c.Version {
		t.Fatalf("client committed %+v (tree %d), server %+v", c, l.TreeVersion(), s.server.Committed())
	}
	return l.Committed().Version
}

// sim returns the model of the ledger restored at the snapshot and then
// committing the blocks after it up to version top.
func (s *snapSource) sim(top uint64) *ledgerSim {
	m := newLedgerSim()
	m.apply(m.batch(s.txs[:s.version()], s.target))
	v := s.version()
	for i := s.m; v < top; i++ {
		txs := s.nodes[i].Block.Payload()
		m.apply(m.batch(txs, s.nodes[i+2].QC.LedgerInfo()))
		v += uint64(len(txs))
	}
	return m
}

// checkRecovers checks that st recovers as a node restarting there would:
// mid-restore at genesis with the snapshot's 3-chain as its sync target,
// once restored at the snapshot's block.
func (s *snapSource) checkRecovers(t *testing.T, what string, st *store.Store, restored bool) {
	t.Helper()
	rd, err := st.Recover()
	if err != nil {
		t.Fatalf("%s: Recover: %v", what, err)
	}
	if restored {
		if rd.Root.Block.ID != s.nodes[s.m-1].Block.ID || rd.SyncTarget != nil {
			t.Fatalf("%s: recovered root %s, sync target %v; want the snapshot's block", what, rd.Root.Block.ID.Short(), rd.SyncTarget != nil)
		}
		return
	}
	if !rd.Root.Block.IsGenesis() || rd.SyncTarget == nil || rd.SyncTarget.Blocks[0].ID != s.nodes[s.m-1].Block.ID {
		t.Fatalf("%s: mid-restore recovered root %s, sync target %v", what, rd.Root.Block.ID.Short(), rd.SyncTarget)
	}
}

// sameStores fails t unless got holds what ref holds: the committed
// record, the first version kept, no restore in progress, the state of
// keys, the nodes nodeKeys and the whole state tree.
func sameStores(t *testing.T, what string, ref, got *store.Store, keys [][]byte, nodeKeys []statetree.NodeKey) {
	t.Helper()
	rc, err1 := ref.Committed()
	gc, err2 := got.Committed()
	if err1 != nil || err2 != nil {
		t.Fatalf("%s: Committed: %v, %v", what, err1, err2)
	}
	if rc.Version != gc.Version || rc.TreeVersion != gc.TreeVersion || !slices.Equal(rc.Frontier, gc.Frontier) ||
		!bytes.Equal(mustEncode(t, rc.LedgerInfo), mustEncode(t, gc.LedgerInfo)) {
		t.Fatalf("%s: committed %+v, want %+v", what, gc, rc)
	}
	re, err1 := ref.Earliest()
	ge, err2 := got.Earliest()
	if err1 != nil || err2 != nil || re != ge {
		t.Fatalf("%s: Earliest %d (%v), want %d (%v)", what, ge, err2, re, err1)
	}
	if p, err := got.Snapshot(); p != nil || err != nil {
		t.Fatalf("%s: a restore is still stored: %v, %v", what, p, err)
	}
	for _, k := range keys {
		rv, rok, err1 := ref.Get(k)
		gv, gok, err2 := got.Get(k)
		if err1 != nil || err2 != nil || rok != gok || !bytes.Equal(rv, gv) {
			t.Fatalf("%s: Get(%q) = %x, %v, %v; want %x, %v, %v", what, k, gv, gok, err2, rv, rok, err1)
		}
	}
	for _, k := range nodeKeys {
		rn, err1 := ref.Node(k)
		gn, err2 := got.Node(k)
		if err1 != nil || err2 != nil || !bytes.Equal(rn.AppendBinary(nil), gn.AppendBinary(nil)) {
			t.Fatalf("%s: node %d/%d/%x = %v, %v; want %v, %v", what, k.Version, k.Depth, k.Path[:4], gn, err2, rn, err1)
		}
	}
	rl, err1 := statetree.New(ref).Leaves(rc.TreeVersion, chain.Hash{}, 1<<20)
	gl, err2 := statetree.New(got).Leaves(gc.TreeVersion, chain.Hash{}, 1<<20)
	if err1 != nil || err2 != nil || len(rl) != len(gl) {
		t.Fatalf("%s: %d leaves (%v), want %d (%v)", what, len(gl), err2, len(rl), err1)
	}
	for i := range rl {
		if !bytes.Equal(rl[i].Key, gl[i].Key) || !bytes.Equal(rl[i].Value, gl[i].Value) {
			t.Fatalf("%s: leaf %d differs", what, i)
		}
	}
}

// TestSnapshotCrashAtEveryWrite: a restore crashed before or after any of
// its writes (each chunk's PutSnapshot, the FinishSnapshot), reopened and
// resumed, ends as the uninterrupted restore does; the store recovers and
// holds the ledger it models at every step.
func TestSnapshotCrashAtEveryWrite(t *testing.T) {
	s := newSnapSource(t, 41)
	const n = 4
	ref, refL := s.newClient(t, tempPath(t))
	if err := s.restore(refL, n); err != nil {
		t.Fatalf("uninterrupted restore: %v", err)
	}
	writes := len(ref.puts) + 1
	if writes < 6 {
		t.Fatalf("the restore writes %d times: too few crash points", writes)
	}
	keys, nodeKeys := s.keys(), ref.nodeKeys()
	m := s.sim(s.version())
	checkLedger(t, ref.Store, m)
	s.checkRecovers(t, "uninterrupted", ref.Store, true)
	total := len(s.state(s.version()))

	for k := range writes {
		for _, after := range []bool{false, true} {
			what := fmt.Sprintf("crash at write %d of %d (after it: %v)", k, writes, after)
			path := tempPath(t)
			w, l := s.newClient(t, path)
			w.left, w.after = k, after
			if err := s.restore(l, n); !errors.Is(err, errCrash) {
				t.Fatalf("%s: restore returned %v", what, err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}

			st := openStore(t, path, s.v.Genesis)
			finished := k == writes-1 && after
			s.checkRecovers(t, what, st, finished)
			w, l = s.reopen(t, st)
			stored := k
			if after {
				stored++
			}
			if finished {
				if l.Version() != s.version() {
					t.Fatalf("%s: reopened at version %d", what, l.Version())
				}
				if _, err := l.RestoreSnapshot(s.target, nil); !errors.Is(err, ledger.ErrNotEmpty) {
					t.Fatalf("%s: RestoreSnapshot of a restored ledger = %v", what, err)
				}
			} else {
				if l.Version() != 0 || !l.CanRestoreSnapshot() {
					t.Fatalf("%s: reopened at version %d mid-restore", what, l.Version())
				}
				r, err := l.RestoreSnapshot(s.target, nil)
				if stored == 0 {
					if !errors.Is(err, ledger.ErrNoSnapshot) {
						t.Fatalf("%s: resume with nothing stored = %v", what, err)
					}
				} else {
					if err != nil {
						t.Fatalf("%s: resume: %v", what, err)
					}
					if want := min(stored*n, total); r.Leaves() != uint64(want) {
						t.Fatalf("%s: resumed with %d leaves, want %d", what, r.Leaves(), want)
					}
				}
				if err := s.restore(l, n); err != nil {
					t.Fatalf("%s: resumed restore: %v", what, err)
				}
				if len(w.puts) != len(ref.puts)-min(stored, len(ref.puts)) {
					t.Fatalf("%s: resumed restore wrote %d chunks, want %d", what, len(w.puts), len(ref.puts)-stored)
				}
			}
			sameStores(t, what, ref.Store, st, keys, nodeKeys)
			checkLedger(t, st, m)
			s.checkRecovers(t, what+", resumed", st, true)
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestSnapshotOddVersion: after a snapshot of an odd version V, the ledger
// commits V, V+1, ...: the level-1 accumulator node over V-1 and V, which
// no record stores, is hashed from the frontier and the transaction of V,
// so that frontiers, nodes, chunks and transaction proofs across V are the
// server's.
func TestSnapshotOddVersion(t *testing.T) {
	s := newSnapSource(t, 42)
	w, l := s.newClient(t, tempPath(t))
	if err := s.restore(l, 3); err != nil {
		t.Fatal(err)
	}
	v := s.version()
	if v%2 != 1 {
		t.Fatalf("snapshot at even version %d", v)
	}
	top := s.extend(t, w.Store, l)
	sst := s.server.Storage()

	straddle := compact.NewNodeID(1, v/2)
	got, err := w.Nodes([]compact.NodeID{straddle})
	if err != nil {
		t.Fatalf("Nodes(straddle): %v", err)
	}
	want, err := sst.Nodes([]compact.NodeID{straddle})
	if err != nil || got[0] != want[0] {
		t.Fatalf("straddle node (1, %d) = %s, server's %s (%v)", v/2, got[0].Short(), want[0].Short(), err)
	}
	// Every node not wholly below V.
	var ids []compact.NodeID
	for level := uint(0); 1<<level <= top; level++ {
		for i := uint64(0); (i+1)<<level <= top; i++ {
			if (i+1)<<level > v {
				ids = append(ids, compact.NewNodeID(level, i))
			}
		}
	}
	got, err = w.Nodes(ids)
	if err != nil {
		t.Fatalf("Nodes across the snapshot: %v", err)
	}
	want, err = sst.Nodes(ids)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("accumulator nodes across the snapshot differ from the server's (%v)", err)
	}
	for u := v; u <= top; u++ {
		fr, err := l.FrontierAt(u)
		sfr, serr := s.server.FrontierAt(u)
		if err != nil || serr != nil || !slices.Equal(fr, sfr) {
			t.Fatalf("FrontierAt(%d) differs from the server's (%v, %v)", u, err, serr)
		}
		if u == top {
			break
		}
		for _, mx := range []uint64{1, 2, 5} {
			c, err := l.GetChunk(u, top, mx)
			if err != nil {
				t.Fatalf("GetChunk(%d, %d, %d): %v", u, top, mx, err)
			}
			if err := ledger.VerifyChunk(c, sfr, u, l.Committed()); err != nil {
				t.Fatalf("chunk from %d (max %d): %v", u, mx, err)
			}
		}
		h := chain.TxLeafHash(s.txs[u])
		if got, ok, err := w.TxVersion(h); err != nil || !ok || got != u {
			t.Fatalf("TxVersion(tx of version %d) = %d, %v, %v", u, got, ok, err)
		}
		p, ok, err := l.TxProof(h)
		sp, sok, _ := s.server.TxProof(h)
		if err != nil || !ok || !sok || ledger.VerifyTxProof(s.v.Verifier, h, p) != nil || !slices.Equal(p.Proof, sp.Proof) {
			t.Fatalf("TxProof of version %d: %v, %v", u, ok, err)
		}
	}
	if _, err := l.GetChunk(v-1, top, 3); !errors.Is(err, ledger.ErrPruned) {
		t.Fatalf("GetChunk below the snapshot = %v, want ErrPruned", err)
	}
	if _, err := w.Txs(v-1, 1); !errors.Is(err, ledger.ErrPruned) {
		t.Fatalf("Txs below the snapshot = %v, want ErrPruned", err)
	}
	checkLedger(t, w.Store, s.sim(top))
	if rd, err := w.Recover(); err != nil || rd.Root.Block.ID != l.Committed().ID {
		t.Fatalf("Recover after the commits: %v", err)
	}
}

// treeNodes returns the keys and hashes of the nodes of the tree of
// version, walked from its root; it fails t if a node is missing or its
// parent names another hash.
func treeNodes(t *testing.T, r statetree.NodeReader, version uint64) map[statetree.NodeKey]chain.Hash {
	t.Helper()
	out := map[statetree.NodeKey]chain.Hash{}
	var walk func(k statetree.NodeKey, want *chain.Hash)
	walk = func(k statetree.NodeKey, want *chain.Hash) {
		n, err := r.Node(k)
		if err != nil {
			t.Fatalf("tree of version %d: node %d/%d/%x: %v", version, k.Version, k.Depth, k.Path[:4], err)
		}
		if want != nil && n.Hash() != *want {
			t.Fatalf("tree of version %d: node %d/%d has hash %s, its parent says %s", version, k.Version, k.Depth, n.Hash().Short(), want.Short())
		}
		out[k] = n.Hash()
		if n.Kind != statetree.KindInternal {
			return
		}
		for side, c := range []statetree.Child{n.Left, n.Right} {
			if c.Kind == statetree.KindNull {
				continue
			}
			p := k.Path
			if side == 1 {
				p[k.Depth/8] |= 0x80 >> (k.Depth % 8)
			}
			walk(statetree.NodeKey{Version: c.Version, Depth: k.Depth + 1, Path: p}, &c.Hash)
		}
	}
	walk(statetree.NodeKey{Version: version}, nil)
	return out
}

// TestSnapshotPrune: a prune past the snapshot deletes the snapshot's
// nodes that later versions replaced from its chunk records, and keeps
// every tree from the first version kept on whole.
func TestSnapshotPrune(t *testing.T) {
	s := newSnapSource(t, 43)
	path := tempPath(t)
	w, l := s.newClient(t, path)
	if err := s.restore(l, 2); err != nil {
		t.Fatal(err)
	}
	v := s.version()
	restored := w.nodeKeys()
	top := s.extend(t, w.Store, l)
	for _, k := range restored {
		if _, err := w.Node(k); err != nil {
			t.Fatalf("snapshot node %d/%d before the prune: %v", k.Version, k.Depth, err)
		}
	}

	kept, err := w.Prune(v + (top-v)/2)
	if err != nil {
		t.Fatalf("Prune: %v", err)
	}
	if kept <= v || kept >= top {
		t.Fatalf("Prune kept versions from %d; snapshot at %d, committed %d", kept, v, top)
	}
	// The snapshot's nodes still in the tree of the first version kept
	// stay; the others go.
	live := treeNodes(t, w, kept)
	var stay, gone int
	for _, k := range restored {
		_, err := w.Node(k)
		switch _, in := live[k]; {
		case in && err == nil:
			stay++
		case !in && errors.Is(err, statetree.ErrNodeNotFound):
			gone++
		default:
			t.Fatalf("snapshot node %d/%d/%x after the prune (in the tree of %d: %v): %v", k.Version, k.Depth, k.Path[:4], kept, in, err)
		}
	}
	if stay == 0 || gone == 0 {
		t.Fatalf("the prune kept %d of the snapshot's %d nodes and deleted %d: not a test", stay, len(restored), gone)
	}
	t.Logf("prune to %d: %d snapshot nodes deleted, %d kept", kept, gone, stay)
	// Every tree from there on is whole.
	for ver := kept; ver <= top; ver++ {
		if _, err := w.Node(statetree.NodeKey{Version: ver}); errors.Is(err, statetree.ErrNodeNotFound) {
			continue // no tree of that version
		}
		leaves, err := statetree.New(w).Leaves(ver, chain.Hash{}, 1<<20)
		if err != nil || len(leaves) != len(s.state(ver)) {
			t.Fatalf("tree of version %d after the prune: %d leaves, %v; want %d", ver, len(leaves), err, len(s.state(ver)))
		}
		treeNodes(t, w, ver)
	}
	// And the state reads and proves as before.
	want := s.state(top)
	for _, k := range s.keys() {
		got, ok, err := l.Get(k)
		wv, wok := want[string(k)]
		if err != nil || ok != wok || !bytes.Equal(got, wv) {
			t.Fatalf("Get(%q) after the prune = %q, %v, %v; want %q", k, got, ok, err, wv)
		}
		p, err := l.StateProof(k)
		if err != nil || p.Present != wok || ledger.VerifyStateProof(s.v.Verifier, k, p) != nil {
			t.Fatalf("StateProof(%q) after the prune: %v", k, err)
		}
	}
	checkLedger(t, w.Store, s.sim(top))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st := openStore(t, path, s.v.Genesis)
	defer st.Close()
	if _, err := ledger.New(st, s.v.Genesis); err != nil {
		t.Fatalf("ledger.New after the prune: %v", err)
	}
	// A second prune, to the committed version's last even run, deletes
	// the rest of what is stale.
	if _, err := st.Prune(top); err != nil {
		t.Fatalf("second Prune: %v", err)
	}
	checkLedger(t, st, s.sim(top))
}

// subtreeEnd is the last key hash under the node at k: its path followed
// by ones.
func subtreeEnd(k statetree.NodeKey) []byte {
	e := k.Path
	for i := int(k.Depth); i < 8*chain.HashSize; i++ {
		e[i/8] |= 0x80 >> (i % 8)
	}
	return e[:]
}

// TestSnapshotChunkRecords: a restored node is in the record of the chunk
// with the largest first key hash at or before its subtree's end, or of
// the next chunk (the first leaf after its subtree starts it); both
// happen, and lookups find every node either way, before and after a
// reopen.
func TestSnapshotChunkRecords(t *testing.T) {
	s := newSnapSource(t, 44)
	path := tempPath(t)
	w, l := s.newClient(t, path)
	if err := s.restore(l, 3); err != nil {
		t.Fatal(err)
	}
	type rec struct {
		key   []byte
		nodes []statetree.NodeEntry
	}
	var recs []rec
	for _, p := range w.puts {
		recs = append(recs, rec{key: bytes.Clone(p.first[:]), nodes: p.nodes})
	}
	recs = append(recs, rec{key: bytes.Repeat([]byte{0xff}, chain.HashSize+1), nodes: w.last})
	if !slices.IsSortedFunc(recs, func(a, b rec) int { return bytes.Compare(a.key, b.key) }) {
		t.Fatal("chunk records are not in key order")
	}
	floor, next := 0, 0
	for i, r := range recs {
		for _, e := range r.nodes {
			end := subtreeEnd(e.Key)
			f := -1 // the record with the largest key at most end
			for j := range recs {
				if bytes.Compare(recs[j].key, end) <= 0 {
					f = j
				}
			}
			switch i {
			case f:
				floor++
			case f + 1:
				next++
			default:
				t.Fatalf("node %d/%d/%x (subtree end %x) is in record %d, floor record %d", e.Key.Version, e.Key.Depth, e.Key.Path[:4], end[:4], i, f)
			}
		}
	}
	if floor == 0 || next == 0 {
		t.Fatalf("%d nodes in their floor record, %d in the next: not a test", floor, next)
	}
	t.Logf("%d records: %d nodes in their floor record, %d in the next", len(recs), floor, next)
	check := func(what string, st *store.Store) {
		for _, r := range recs {
			for _, e := range r.nodes {
				n, err := st.Node(e.Key)
				if err != nil || !bytes.Equal(n.AppendBinary(nil), e.Node.AppendBinary(nil)) {
					t.Fatalf("%s: node %d/%d/%x = %v, %v", what, e.Key.Version, e.Key.Depth, e.Key.Path[:4], n, err)
				}
			}
		}
		// A node at a position the tree does not have is not found.
		if _, err := st.Node(statetree.NodeKey{Version: s.version(), Depth: statetree.MaxDepth}); !errors.Is(err, statetree.ErrNodeNotFound) {
			t.Fatalf("%s: node at no position = %v", what, err)
		}
	}
	check("restored", w.Store)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st := openStore(t, path, s.v.Genesis)
	defer st.Close()
	check("reopened", st)
}

// TestSnapshotNewTargetAtTheSameVersion: a restore in progress is for a
// ledger info that an idle chain's next commit (an empty block) replaces
// at the same version; the restore of the new ledger info must not trip
// over the records of the old one.
func TestSnapshotNewTargetAtTheSameVersion(t *testing.T) {
	v := chaintest.NewValidators(45, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 3, TxSize: 40, Seed: 45})
	nodes := b.Extend(b.Genesis(), 6)
	for range 4 { // the chain goes idle
		p := nodes[len(nodes)-1]
		round := p.Round() + 1
		nodes = append(nodes, b.ChildWith(p, round, v.Leader(round), nil))
	}
	sst := openStore(t, tempPath(t), v.Genesis)
	defer sst.Close()
	server := commitThroughLedger(t, sst, v.Genesis, nodes)
	oldLI := nodes[7].QC.LedgerInfo() // commits nodes[5], the last with transactions
	newLI := nodes[8].QC.LedgerInfo() // commits nodes[6], empty: the same version
	if oldLI.LedgerInfo.CommitInfo.Version != newLI.LedgerInfo.CommitInfo.Version || oldLI.LedgerInfo.CommitInfo == newLI.LedgerInfo.CommitInfo {
		t.Fatalf("ledger infos %+v and %+v", oldLI.LedgerInfo.CommitInfo, newLI.LedgerInfo.CommitInfo)
	}
	ver := oldLI.LedgerInfo.CommitInfo.Version
	frontier, err := server.FrontierAt(ver)
	if err != nil {
		t.Fatal(err)
	}
	add := func(t *testing.T, r *ledger.SnapshotRestore, n, k int) {
		t.Helper()
		for i := 0; k < 0 || i < k; i++ {
			next, more := r.Next()
			if !more {
				return
			}
			c, err := server.StateChunk(ver, next, n)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Add(c); err != nil {
				t.Fatalf("Add chunk %d of %d leaves: %v", i, n, err)
			}
		}
	}
	for _, n := range []int{2, 3} { // chunks of the same or of other sizes
		t.Run(fmt.Sprintf("chunks of %d leaves", n), func(t *testing.T) {
			st, l, r := beginRestore(t, v.Genesis, nodes[6:9], oldLI, frontier)
			defer st.Close()
			add(t, r, 2, 3)

			r, err = l.RestoreSnapshot(newLI, frontier)
			if err != nil {
				t.Fatal(err)
			}
			add(t, r, n, -1)
			if err := r.Finish(); err != nil {
				t.Fatalf("Finish: %v", err)
			}
			if l.Committed() != newLI.LedgerInfo.CommitInfo {
				t.Fatalf("restored to %+v, want %+v", l.Committed(), newLI.LedgerInfo.CommitInfo)
			}
			all := txsOf(nodes)
			for _, tx := range all {
				k, want, _ := chain.DecodeKV(tx)
				if got, ok, err := l.Get(k); err != nil || !ok || !bytes.Equal(got, want) {
					t.Fatalf("Get(%x) = %x, %v, %v", k, got, ok, err)
				}
			}
			// The restored tree is the server's, node for node (by position:
			// the server's are of the versions that wrote them).
			type pos struct {
				depth uint16
				path  chain.Hash
			}
			byPos := func(m map[statetree.NodeKey]chain.Hash) map[pos]chain.Hash {
				out := map[pos]chain.Hash{}
				for k, h := range m {
					out[pos{k.Depth, k.Path}] = h
				}
				return out
			}
			mine, theirs := byPos(treeNodes(t, st, ver)), byPos(treeNodes(t, sst, ver))
			if len(mine) != len(theirs) {
				t.Fatalf("restored tree has %d nodes, the server's %d", len(mine), len(theirs))
			}
			for k, h := range theirs {
				if mine[k] != h {
					t.Fatalf("node at depth %d differs", k.depth)
				}
			}
		})
	}
}

// beginRestore opens a new store holding the blocks of nodes (the
// 3-chain of a fast-forward) and begins a restore of li's snapshot on a
// ledger over it.
func beginRestore(t *testing.T, g *chain.Genesis, nodes []*chaintest.Node, li *chain.LedgerInfoWithSignatures, frontier []chain.Hash) (*store.Store, *ledger.Ledger, *ledger.SnapshotRestore) {
	t.Helper()
	st := openStore(t, tempPath(t), g)
	saveNodes(t, st, nodes...)
	l, err := ledger.New(st, g)
	if err != nil {
		t.Fatal(err)
	}
	r, err := l.RestoreSnapshot(li, frontier)
	if err != nil {
		t.Fatal(err)
	}
	return st, l, r
}

// TestSnapshotEmptyState: a snapshot of a version whose state is empty
// (its transactions are opaque) has no chunk: it finishes at once, and the
// ledger goes on from it.
func TestSnapshotEmptyState(t *testing.T) {
	v := chaintest.NewValidators(46, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 3, TxSize: 8, Seed: 46})
	nodes := b.Extend(b.Genesis(), 8)
	sst := openStore(t, tempPath(t), v.Genesis)
	defer sst.Close()
	server := commitThroughLedger(t, sst, v.Genesis, nodes[:5])
	target := server.LedgerInfo()
	ver := target.LedgerInfo.CommitInfo.Version
	if target.LedgerInfo.CommitInfo.StateRoot != chain.EmptyStateRoot || ver == 0 {
		t.Fatalf("target %+v: want an empty state at a version", target.LedgerInfo.CommitInfo)
	}
	frontier, err := server.FrontierAt(ver)
	if err != nil {
		t.Fatal(err)
	}
	st, l, r := beginRestore(t, v.Genesis, nodes[2:5], target, frontier)
	defer st.Close()
	if _, more := r.Next(); more || !r.Complete() {
		t.Fatal("a restore of the empty state wants chunks")
	}
	if err := r.Finish(); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if root, err := l.StateRoot(); err != nil || root != chain.EmptyStateRoot || l.Version() != ver {
		t.Fatalf("restored: version %d, state root %s, %v", l.Version(), root.Short(), err)
	}
	for i := 3; i < len(nodes); i++ {
		if _, err := l.Execute(nodes[i].Block); err != nil {
			t.Fatalf("Execute block %d: %v", i, err)
		}
		if i >= 5 {
			saveNodes(t, st, nodes[i])
			if err := l.Commit([]*chain.Block{nodes[i-2].Block}, nodes[i].QC.LedgerInfo()); err != nil {
				t.Fatalf("Commit block %d: %v", i-2, err)
			}
		}
	}
	for u := ver; u < l.Version(); u++ {
		tx := txsOf(nodes)[u]
		if got, ok, err := st.TxVersion(chain.TxLeafHash(tx)); err != nil || !ok || got != u {
			t.Fatalf("TxVersion(version %d) = %d, %v, %v", u, got, ok, err)
		}
	}
	if rd, err := st.Recover(); err != nil || rd.Root.Block.ID != l.Committed().ID {
		t.Fatalf("Recover: %v", err)
	}
}

// TestSnapshotWriteFailsThenRetries: a snapshot write that fails (the
// process lives on) leaves the restore where it was: the same chunk is
// added again, and the restore ends as an uninterrupted one.
func TestSnapshotWriteFailsThenRetries(t *testing.T) {
	s := newSnapSource(t, 47)
	const n = 3
	ref, refL := s.newClient(t, tempPath(t))
	if err := s.restore(refL, n); err != nil {
		t.Fatal(err)
	}
	writes := len(ref.puts) + 1
	for k := range writes {
		w, l := s.newClient(t, tempPath(t))
		r, err := l.RestoreSnapshot(s.target, s.frontier)
		if err != nil {
			t.Fatal(err)
		}
		w.left = k
		failed := false
		for {
			next, more := r.Next()
			if !more {
				break
			}
			c, err := s.server.StateChunk(s.version(), next, n)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Add(c); err != nil {
				if !errors.Is(err, errCrash) || failed {
					t.Fatalf("write %d: Add: %v", k, err)
				}
				failed = true
				if got, _ := r.Next(); got != next {
					t.Fatalf("write %d: a failed Add moved the restore to %s", k, got.Short())
				}
				w.left = -1
				if err := r.Add(c); err != nil {
					t.Fatalf("write %d: Add again: %v", k, err)
				}
			}
		}
		if err := r.Finish(); err != nil {
			if !errors.Is(err, errCrash) || failed {
				t.Fatalf("write %d: Finish: %v", k, err)
			}
			// Finish closes the restore: a new one resumes from the store.
			w.left = -1
			if r, err = l.RestoreSnapshot(s.target, nil); err != nil {
				t.Fatalf("write %d: resume after a failed Finish: %v", k, err)
			}
			if err := r.Finish(); err != nil {
				t.Fatalf("write %d: Finish again: %v", k, err)
			}
		}
		sameStores(t, fmt.Sprintf("write %d failed", k), ref.Store, w.Store, s.keys(), ref.nodeKeys())
		checkLedger(t, w.Store, s.sim(s.version()))
	}
}
