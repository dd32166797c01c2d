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
