package statetree_test

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/statetree"
)

// TestMemStoreIndex checks the store's table against a map through
// growth, overwrites and the deletions of pruning (which move keys back
// in their probe sequences), with keys of all depths, some sharing their
// version and path, and odd keys (path bits past the depth) kept apart.
func TestMemStoreIndex(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	s := statetree.NewMemStore()
	want := map[statetree.NodeKey]chain.Hash{} // key -> hash of its node
	var live []statetree.NodeKey
	randKey := func() statetree.NodeKey {
		k := statetree.NodeKey{Version: uint64(r.IntN(8)), Depth: uint16(r.IntN(statetree.MaxDepth + 1))}
		for i := range k.Path {
			k.Path[i] = byte(r.Uint32())
		}
		if r.IntN(50) > 0 {
			// Clean the bits past the depth, as the tree does.
			for d := int(k.Depth); d < statetree.MaxDepth; d++ {
				k.Path[d/8] &^= 1 << (7 - d%8)
			}
		}
		if r.IntN(4) == 0 {
			k.Path = chain.Hash{} // many keys differ only in depth or version
		}
		return k
	}
	check := func() {
		t.Helper()
		if s.Len() != len(want) {
			t.Fatalf("%d nodes stored, want %d", s.Len(), len(want))
		}
		for k, h := range want {
			n, err := s.Node(k)
			if err != nil || n.Hash() != h {
				t.Fatalf("node %d/%d: %v", k.Version, k.Depth, err)
			}
		}
		for range 100 {
			k := randKey()
			if _, ok := want[k]; ok {
				continue
			}
			if _, err := s.Node(k); !errors.Is(err, statetree.ErrNodeNotFound) {
				t.Fatalf("absent node %d/%d: %v", k.Version, k.Depth, err)
			}
		}
	}
	for round := uint64(1); round <= 40; round++ {
		b := &statetree.Batch{}
		for range r.IntN(300) {
			k := randKey()
			if r.IntN(5) == 0 && len(live) > 0 {
				k = live[r.IntN(len(live))] // an overwrite
			}
			var n *statetree.Node
			if r.IntN(2) == 0 {
				n = &statetree.Node{Kind: statetree.KindInternal, Left: statetree.Child{Kind: statetree.KindLeaf, Version: r.Uint64(), Hash: chain.Hash{byte(r.Uint32())}}, Right: statetree.Child{Kind: statetree.KindInternal, Version: 1, Hash: chain.Hash{1}}}
			} else {
				v := make([]byte, r.IntN(300))
				n = &statetree.Node{Kind: statetree.KindLeaf, Leaf: &statetree.Leaf{KeyHash: chain.Hash{2}, Key: []byte{1}, Value: v, ValueHash: statetree.ValueHash(v)}}
			}
			if _, ok := want[k]; !ok {
				live = append(live, k)
			}
			want[k] = n.Hash()
			b.Nodes = append(b.Nodes, statetree.NodeEntry{Key: k, Node: n})
		}
		// Mark about a third of the live keys stale and prune them.
		rest := live[:0]
		for _, k := range live {
			if r.IntN(3) == 0 {
				b.Stale = append(b.Stale, statetree.StaleNode{StaleSince: round, Key: k})
			} else {
				rest = append(rest, k)
			}
		}
		s.Apply(b)
		check()
		pruned := s.Prune(round)
		for _, st := range b.Stale {
			delete(want, st.Key)
		}
		live = rest
		if pruned != len(b.Stale) {
			t.Fatalf("round %d: pruned %d, want %d", round, pruned, len(b.Stale))
		}
		check()
	}
}

// plainReader hides a store's type, so that the tree reads it through
// NodeReader only, without the hints of MemStore's entries.
type plainReader struct{ r statetree.NodeReader }

func (p plainReader) Node(k statetree.NodeKey) (*statetree.Node, error) { return p.r.Node(k) }

// TestHints: updates read through MemStore's hints give the batches of
// updates read through NodeReader, and a hint to a replaced or pruned
// entry is not followed.
func TestHints(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	f := newFixture(t)
	f.commit(1, randomWrites(r, 300, 1000, 0))
	for v := uint64(2); v <= 20; v++ {
		ws := randomWrites(r, 1+r.IntN(40), 1000, 0.2)
		b, err := f.tree.Update(v-1, v, ws)
		if err != nil {
			t.Fatal(err)
		}
		p, err := statetree.New(plainReader{f.store}).Update(v-1, v, ws)
		if err != nil {
			t.Fatal(err)
		}
		if b.Root != p.Root || len(b.Nodes) != len(p.Nodes) || len(b.Stale) != len(p.Stale) {
			t.Fatalf("version %d: root %s, %d nodes; plain %s, %d", v, b.Root.Short(), len(b.Nodes), p.Root.Short(), len(p.Nodes))
		}
		f.commit(v, ws)
	}
	// Replace the root's left child with a leaf: the update must see the
	// leaf (a corrupt tree), not follow the root's hint to the old node.
	root, err := f.store.Node(statetree.NodeKey{Version: 20})
	if err != nil || root.Left.Kind != statetree.KindInternal {
		t.Fatalf("root: %v", err)
	}
	k := statetree.NodeKey{Version: root.Left.Version, Depth: 1}
	f.store.Apply(&statetree.Batch{Nodes: []statetree.NodeEntry{{Key: k, Node: &statetree.Node{Kind: statetree.KindLeaf, Leaf: &statetree.Leaf{Key: []byte{1}}}}}})
	ws := randomWrites(r, 50, 1000, 0)
	if _, err := f.tree.Update(20, 21, ws); !errors.Is(err, statetree.ErrCorrupt) {
		t.Fatalf("update over a replaced node: %v", err)
	}
	// Prune it: the update must not find it.
	f.store.Apply(&statetree.Batch{Stale: []statetree.StaleNode{{StaleSince: 20, Key: k}}})
	f.store.Prune(20)
	if _, err := f.tree.Update(20, 21, ws); !errors.Is(err, statetree.ErrNodeNotFound) {
		t.Fatalf("update over a pruned node: %v", err)
	}
}
