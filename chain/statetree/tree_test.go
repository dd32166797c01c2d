package statetree_test

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/statetree"
)

func TestEmptyTree(t *testing.T) {
	f := newFixture(t)
	b := f.commit(0, nil)
	if b.Root != statetree.Placeholder {
		t.Fatalf("empty root %s", b.Root)
	}
	l, p, err := f.tree.Get(0, statetree.KeyHash([]byte("x")))
	if err != nil || l != nil {
		t.Fatalf("get in empty tree: %v, %v", l, err)
	}
	if err := statetree.VerifyNonInclusion(b.Root, statetree.KeyHash([]byte("x")), p); err != nil {
		t.Fatal(err)
	}
}

// TestUpdateMatchesModel runs random batches of puts and deletes (small
// key space: overwrites, deletes of present and absent keys, leaves that
// rise and sink) and checks every root against the definition, then that
// every version stays readable and provable.
func TestUpdateMatchesModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	f := newFixture(t)
	f.commit(0, nil)
	for v := uint64(1); v <= 60; v++ {
		n := 1 + r.IntN(20)
		if v%20 == 0 {
			n = 700 // a batch big enough for the parallel path
		}
		f.commit(v*10, randomWrites(r, n, 300, 0.3))
	}
	// A batch that deletes everything, then one into the empty tree again.
	var all []statetree.Write
	for kh := range f.models[f.base] {
		all = append(all, statetree.Write{KeyHash: kh, Delete: true})
	}
	if b := f.commit(1000, sortWrites(all)); b.Root != statetree.Placeholder {
		t.Fatalf("root after deleting everything: %s", b.Root.Short())
	}
	f.commit(1001, randomWrites(r, 5, 300, 0))
	f.commit(1002, nil)
	for v, m := range f.models {
		checkVersion(t, f.tree, v, f.roots[v], m, r)
	}
}

// checkVersion checks every key of m and some absent keys against the tree
// of version v.
func checkVersion(t *testing.T, tr *statetree.Tree, v uint64, root chain.Hash, m model, r *rand.Rand) {
	t.Helper()
	if got, err := tr.Root(v); err != nil || got != root {
		t.Fatalf("version %d: root %s, %v; want %s", v, got.Short(), err, root.Short())
	}
	for kh, want := range m {
		l, p, err := tr.Get(v, kh)
		if err != nil || l == nil || string(l.Value) != string(want.Value) {
			t.Fatalf("version %d: get %s: %v, %v", v, kh.Short(), l, err)
		}
		if err := statetree.VerifyInclusion(root, kh, want.Value, p); err != nil {
			t.Fatalf("version %d: verify %s: %v", v, kh.Short(), err)
		}
	}
	for range 20 {
		k := key(300 + r.IntN(1000))
		kh := statetree.KeyHash(k)
		l, p, err := tr.Get(v, kh)
		if err != nil || l != nil {
			t.Fatalf("version %d: get absent: %v, %v", v, l, err)
		}
		if err := statetree.VerifyNonInclusion(root, kh, p); err != nil {
			t.Fatalf("version %d: verify absent: %v", v, err)
		}
	}
	ls, err := tr.Leaves(v, chain.Hash{}, len(m)+1)
	if err != nil || len(ls) != len(m) {
		t.Fatalf("version %d: %d leaves, %v; want %d", v, len(ls), err, len(m))
	}
}

// TestParallelSameAsSequential: a large batch gives the same root and the
// same nodes whether or not the parallel path splits it.
func TestParallelSameAsSequential(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	big := randomWrites(r, 3000, 1<<20, 0)
	f := newFixture(t)
	b := f.commit(1, big)
	g := newFixture(t)
	// The same leaves through small batches (never parallel).
	for i, v := 0, uint64(1); i < len(big); i, v = i+100, v+1 {
		g.commit(v, big[i:min(i+100, len(big))])
	}
	if b.Root != g.roots[g.base] {
		t.Fatalf("roots differ")
	}
}

func TestPruneKeepsNewerVersions(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	f := newFixture(t)
	for v := uint64(1); v <= 30; v++ {
		f.commit(v, randomWrites(r, 30, 200, 0.2))
	}
	before := f.store.Len()
	if n := f.store.Prune(20); n == 0 || f.store.Len() != before-n {
		t.Fatalf("pruned %d of %d nodes, %d left", n, before, f.store.Len())
	}
	for v := uint64(20); v <= 30; v++ {
		checkVersion(t, f.tree, v, f.roots[v], f.models[v], r)
	}
	if _, err := f.tree.Root(10); !errors.Is(err, statetree.ErrNodeNotFound) {
		t.Fatalf("pruned version 10: %v", err)
	}
	// Updates go on from the newest version.
	f.commit(31, randomWrites(r, 30, 200, 0.2))
	// Every node not reachable from the newest root was recorded stale.
	f.store.Prune(31)
	if n, want := f.store.Len(), reachable(t, f.store, 31); n != want {
		t.Fatalf("%d nodes left after pruning all but the newest version, %d reachable", n, want)
	}
}

// reachable counts the nodes of version v's tree.
func reachable(t *testing.T, s statetree.NodeReader, v uint64) int {
	var count func(k statetree.NodeKey) int
	count = func(k statetree.NodeKey) int {
		n, err := s.Node(k)
		if err != nil {
			t.Fatal(err)
		}
		c := 1
		for b, ch := range [2]statetree.Child{n.Left, n.Right} {
			if n.Kind != statetree.KindInternal || ch.Kind == statetree.KindNull {
				continue
			}
			p := k.Path
			if b == 1 {
				p[k.Depth/8] |= 1 << (7 - k.Depth%8)
			}
			c += count(statetree.NodeKey{Version: ch.Version, Depth: k.Depth + 1, Path: p})
		}
		return c
	}
	return count(statetree.NodeKey{Version: v})
}

// TestOverlay: speculative updates read through an overlay over the
// committed store, and a child builds on its uncommitted parent.
func TestOverlay(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	f := newFixture(t)
	f.commit(1, randomWrites(r, 50, 100, 0))
	ov := statetree.NewOverlay(f.store)
	tr := statetree.New(ov)
	w2 := randomWrites(r, 20, 100, 0.3)
	b2, err := tr.Update(1, 2, w2)
	if err != nil {
		t.Fatal(err)
	}
	ov.Add(b2)
	w3 := randomWrites(r, 20, 100, 0.3)
	b3, err := tr.Update(2, 3, w3)
	if err != nil {
		t.Fatal(err)
	}
	m := f.models[1].clone()
	m.apply(w2)
	m.apply(w3)
	if b3.Root != m.root() {
		t.Fatal("overlay root differs from the model")
	}
	if _, err := f.tree.Root(2); !errors.Is(err, statetree.ErrNodeNotFound) {
		t.Fatalf("uncommitted version in the store: %v", err)
	}
}

func TestUpdateRejects(t *testing.T) {
	f := newFixture(t)
	f.commit(5, []statetree.Write{put([]byte("a"), []byte("1"))})
	a, b := put([]byte("a"), nil), put([]byte("b"), nil)
	if a.KeyHash[0] > b.KeyHash[0] {
		a, b = b, a
	}
	for _, tc := range []struct {
		name    string
		base, v uint64
		ws      []statetree.Write
		wantErr error
	}{
		{"unsorted", 5, 6, []statetree.Write{b, a}, statetree.ErrUnsortedWrites},
		{"duplicate", 5, 6, []statetree.Write{a, a}, statetree.ErrUnsortedWrites},
		{"version not above base", 5, 5, nil, statetree.ErrVersion},
		{"unknown base", 4, 6, []statetree.Write{a}, statetree.ErrNodeNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.tree.Update(tc.base, tc.v, tc.ws); !errors.Is(err, tc.wantErr) {
				t.Fatalf("got %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestNodeEncodingRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	f := newFixture(t)
	b := f.commit(1, randomWrites(r, 200, 1000, 0))
	for _, e := range b.Nodes {
		enc := e.Node.AppendBinary(nil)
		n, err := statetree.ParseNode(enc)
		if err != nil {
			t.Fatal(err)
		}
		if n.Hash() != e.Node.Hash() || string(n.AppendBinary(nil)) != string(enc) {
			t.Fatal("node changed in a round trip")
		}
		k, err := statetree.ParseNodeKey(e.Key.AppendBinary(nil))
		if err != nil || k != e.Key {
			t.Fatalf("key round trip: %v", err)
		}
	}
}

// TestTinyTrees: a key space of four keys, so roots are often empty or a
// single leaf, leaves rise to the root and sink again; after each version
// the store, pruned to it, holds exactly the version's nodes.
func TestTinyTrees(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	f := newFixture(t)
	for v := uint64(1); v <= 300; v++ {
		f.commit(v, randomWrites(r, r.IntN(4), 4, 0.5))
		f.store.Prune(v)
		if n, want := f.store.Len(), reachable(t, f.store, v); n != want {
			t.Fatalf("version %d: %d nodes stored, %d reachable", v, n, want)
		}
		checkVersion(t, f.tree, v, f.roots[v], f.models[v], r)
	}
}
