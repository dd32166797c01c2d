package statetree_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/statetree"
)

// model is the reference state: key hash -> leaf.
type model map[chain.Hash]statetree.Leaf

func (m model) clone() model {
	c := make(model, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// sorted returns the model's leaves in key-hash order.
func (m model) sorted() []statetree.Leaf {
	ls := make([]statetree.Leaf, 0, len(m))
	for _, l := range m {
		ls = append(ls, l)
	}
	slices.SortFunc(ls, func(a, b statetree.Leaf) int { return bytes.Compare(a.KeyHash[:], b.KeyHash[:]) })
	return ls
}

// root computes the root of the model from the definition, independently of
// the tree's code: empty -> placeholder, one leaf -> its hash, else split on
// the next bit.
func (m model) root() chain.Hash { return refRoot(0, m.sorted()) }

func refRoot(d int, ls []statetree.Leaf) chain.Hash {
	switch len(ls) {
	case 0:
		return statetree.Placeholder
	case 1:
		return statetree.LeafHash(ls[0].KeyHash, ls[0].ValueHash)
	}
	var l0, l1 []statetree.Leaf
	for _, l := range ls {
		if l.KeyHash[d/8]>>(7-uint(d%8))&1 == 0 {
			l0 = append(l0, l)
		} else {
			l1 = append(l1, l)
		}
	}
	return statetree.NodeHash(refRoot(d+1, l0), refRoot(d+1, l1))
}

func key(i int) []byte { return fmt.Appendf(nil, "key-%d", i) }

func put(k, v []byte) statetree.Write {
	return statetree.Write{KeyHash: statetree.KeyHash(k), Key: k, Value: v}
}

func del(k []byte) statetree.Write {
	return statetree.Write{KeyHash: statetree.KeyHash(k), Delete: true}
}

func sortWrites(ws []statetree.Write) []statetree.Write {
	slices.SortFunc(ws, func(a, b statetree.Write) int { return bytes.Compare(a.KeyHash[:], b.KeyHash[:]) })
	return slices.CompactFunc(ws, func(a, b statetree.Write) bool { return a.KeyHash == b.KeyHash })
}

// apply applies ws to m.
func (m model) apply(ws []statetree.Write) {
	for _, w := range ws {
		if w.Delete {
			delete(m, w.KeyHash)
			continue
		}
		m[w.KeyHash] = statetree.Leaf{KeyHash: w.KeyHash, ValueHash: statetree.ValueHash(w.Value), Key: w.Key, Value: w.Value}
	}
}

// randomWrites returns n sorted writes of keys below space, a fraction
// pdel of them deletions.
func randomWrites(r *rand.Rand, n, space int, pdel float64) []statetree.Write {
	ws := make([]statetree.Write, 0, n)
	for range n {
		k := key(r.IntN(space))
		if r.Float64() < pdel {
			ws = append(ws, del(k))
		} else {
			ws = append(ws, put(k, fmt.Appendf(nil, "v%d", r.Uint64())))
		}
	}
	return sortWrites(ws)
}

// fixture is a tree in a MemStore with its model per version.
type fixture struct {
	t      testing.TB
	store  *statetree.MemStore
	tree   *statetree.Tree
	base   uint64
	models map[uint64]model
	roots  map[uint64]chain.Hash
}

func newFixture(t testing.TB) *fixture {
	s := statetree.NewMemStore()
	return &fixture{t: t, store: s, tree: statetree.New(s), base: statetree.Empty,
		models: map[uint64]model{}, roots: map[uint64]chain.Hash{}}
}

// commit applies ws as version v and checks the root against the model.
func (f *fixture) commit(v uint64, ws []statetree.Write) *statetree.Batch {
	f.t.Helper()
	b, err := f.tree.Update(f.base, v, ws)
	if err != nil {
		f.t.Fatalf("update to %d: %v", v, err)
	}
	m := model{}
	if f.base != statetree.Empty {
		m = f.models[f.base].clone()
	}
	m.apply(ws)
	if want := m.root(); b.Root != want {
		f.t.Fatalf("version %d: root %s, model %s", v, b.Root.Short(), want.Short())
	}
	f.store.Apply(b)
	f.models[v], f.roots[v], f.base = m, b.Root, v
	return b
}
