package blocktree_test

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/blocktree"
	"github.com/p2pnode/p2pnode/chain/chaintest"
)

const propertyIterations = 200

// randomTree is a random valid block tree: node 0 is genesis and parent[i]
// is the index of node i's parent. Rounds are unique across the tree and
// strictly increase along each branch, with gaps and forks; runs of
// consecutive rounds make QCs that commit.
type randomTree struct {
	nodes  []*chaintest.Node
	parent []int
}

func newRandomTree(rng *rand.Rand, b *chaintest.Builder, n int) *randomTree {
	rt := &randomTree{nodes: []*chaintest.Node{b.Genesis()}, parent: []int{-1}}
	var round uint64
	for len(rt.nodes) < n {
		p := len(rt.nodes) - 1 // mostly extend the newest block
		if rng.IntN(3) == 0 {
			p = rng.IntN(len(rt.nodes))
		}
		round++
		if rng.IntN(4) == 0 {
			round += 1 + rng.Uint64N(2)
		}
		rt.nodes = append(rt.nodes, b.Child(rt.nodes[p], round))
		rt.parent = append(rt.parent, p)
	}
	return rt
}

// descends reports whether node i is node anc or one of its descendants.
func (rt *randomTree) descends(i, anc int) bool {
	for ; i >= 0; i = rt.parent[i] {
		if i == anc {
			return true
		}
	}
	return false
}

// path returns the blocks from node anc (excluded) to node i (included).
func (rt *randomTree) path(i, anc int) []*chain.Block {
	var rev []*chain.Block
	for ; i != anc; i = rt.parent[i] {
		rev = append(rev, rt.nodes[i].Block)
	}
	out := make([]*chain.Block, len(rev))
	for k, b := range rev {
		out[len(rev)-1-k] = b
	}
	return out
}

// checkTree checks tr against the nodes of rt that descend from node root,
// every one inserted with its QC: their blocks, QCs and paths, and the
// highest QC and commit cert, computed here independently.
func checkTree(t *testing.T, tr *blocktree.Tree, rt *randomTree, root int) {
	t.Helper()
	var kept int
	var maxQC, maxCommit uint64
	maxCommit = rt.nodes[root].Round()
	for i, n := range rt.nodes {
		if !rt.descends(i, root) {
			if tr.Exists(n.Block.ID) {
				t.Fatalf("node %d (%s) is in the tree but not under root %d", i, n.Block, root)
			}
			continue
		}
		kept++
		blk, info, ok := tr.Block(n.Block.ID)
		if !ok || blk != n.Block || info != n.Info {
			t.Fatalf("Block(node %d) = %v, %v, %v", i, blk, info, ok)
		}
		qc, ok := tr.QC(n.Block.ID)
		if !ok || !reflect.DeepEqual(qc, n.QC) {
			t.Fatalf("QC(node %d) = %v, %v; want its QC", i, qc, ok)
		}
		if p, ok := tr.PathFromRoot(n.Block.ID); !ok || !reflect.DeepEqual(p, rt.path(i, root)) {
			t.Fatalf("PathFromRoot(node %d) = %d blocks, %v; want %d", i, len(p), ok, len(rt.path(i, root)))
		}
		maxQC = max(maxQC, n.Round())
		if ci := n.QC.CommitInfo(); n.QC.CommitsBlock() && ci.Round > maxCommit {
			for j := range rt.nodes {
				if rt.nodes[j].Block.ID == ci.ID && rt.descends(j, root) {
					maxCommit = ci.Round
				}
			}
		}
	}
	if tr.Len() != kept {
		t.Fatalf("Len = %d, want %d", tr.Len(), kept)
	}
	if got := tr.Root().Block.ID; got != rt.nodes[root].Block.ID {
		t.Fatalf("root = %s, want node %d", got.Short(), root)
	}
	hqc := tr.HighestQC()
	hb, hinfo := tr.HighestCertifiedBlock()
	if hqc.Round() != maxQC || hb.ID != hqc.CertifiedBlock().ID || hinfo != hqc.CertifiedBlock() {
		t.Fatalf("highest QC round %d on %s, want round %d", hqc.Round(), hb, maxQC)
	}
	if hcc := tr.HighestCommitCert(); hcc.CommitInfo().Round != maxCommit || !tr.Exists(hcc.CommitInfo().ID) {
		t.Fatalf("highest commit cert commits round %d (%s), want round %d",
			hcc.CommitInfo().Round, hcc.CommitInfo().ID.Short(), maxCommit)
	}
}

// TestInsertOrderProperty inserts the blocks of random trees in random
// topological orders, each QC at a random time after its block, with
// repeated inserts mixed in, and checks that the order does not matter.
func TestInsertOrderProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	b := newBuilder(2)
	for it := range propertyIterations {
		rt := newRandomTree(rng, b, 2+rng.IntN(30))

		ref := mustNew(t, genesisRoot(b))
		insertAll(t, ref, rt.nodes[1:]...)

		tr := mustNew(t, genesisRoot(b))
		children := make([][]int, len(rt.nodes))
		for i := 1; i < len(rt.nodes); i++ {
			children[rt.parent[i]] = append(children[rt.parent[i]], i)
		}
		type event struct {
			qc bool
			i  int
		}
		var ready []event
		for _, c := range children[0] {
			ready = append(ready, event{i: c})
		}
		var inserted []int
		for len(ready) > 0 {
			k := rng.IntN(len(ready))
			e := ready[k]
			ready[k] = ready[len(ready)-1]
			ready = ready[:len(ready)-1]
			n := rt.nodes[e.i]
			if e.qc {
				if err := tr.InsertQC(n.QC); err != nil {
					t.Fatalf("iteration %d: InsertQC(node %d): %v", it, e.i, err)
				}
				continue
			}
			if err := tr.InsertBlock(n.Block, n.Info); err != nil {
				t.Fatalf("iteration %d: InsertBlock(node %d): %v", it, e.i, err)
			}
			inserted = append(inserted, e.i)
			ready = append(ready, event{qc: true, i: e.i})
			for _, c := range children[e.i] {
				ready = append(ready, event{i: c})
			}
			if rng.IntN(8) == 0 { // an identical block again changes nothing
				again := rt.nodes[inserted[rng.IntN(len(inserted))]]
				if err := tr.InsertBlock(again.Block, again.Info); err != nil {
					t.Fatalf("iteration %d: InsertBlock again: %v", it, err)
				}
			}
		}
		checkTree(t, tr, rt, 0)
		checkTree(t, ref, rt, 0)
		if !reflect.DeepEqual(tr.HighestQC(), ref.HighestQC()) ||
			!reflect.DeepEqual(tr.HighestCommitCert(), ref.HighestCommitCert()) {
			t.Fatalf("iteration %d: highest QC or commit cert depends on the insert order", it)
		}
	}
}

// TestPruneProperty prunes random trees twice, each time to a random
// descendant of the root, and checks that exactly that node's descendants
// stay and exactly the others are returned, parents first.
func TestPruneProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	b := newBuilder(3)
	for it := range propertyIterations {
		rt := newRandomTree(rng, b, 2+rng.IntN(30))
		tr := mustNew(t, genesisRoot(b))
		insertAll(t, tr, rt.nodes[1:]...)
		root := 0
		for range 2 {
			var under []int
			for i := range rt.nodes {
				if rt.descends(i, root) {
					under = append(under, i)
				}
			}
			newRoot := under[rng.IntN(len(under))]
			removed, err := tr.Prune(rt.nodes[newRoot].Block.ID, commitCert(rt.nodes[newRoot]))
			if err != nil {
				t.Fatalf("iteration %d: Prune(node %d): %v", it, newRoot, err)
			}
			want := map[chain.Hash]int{}
			for _, i := range under {
				if !rt.descends(i, newRoot) {
					want[rt.nodes[i].Block.ID] = i
				}
			}
			seen := map[chain.Hash]bool{}
			for _, id := range removed {
				i, ok := want[id]
				if !ok || seen[id] {
					t.Fatalf("iteration %d: Prune(node %d) removed %s: unexpected or twice", it, newRoot, id.Short())
				}
				if p := rt.parent[i]; p >= 0 {
					if _, gone := want[rt.nodes[p].Block.ID]; gone && !seen[rt.nodes[p].Block.ID] {
						t.Fatalf("iteration %d: node %d removed before its parent %d", it, i, p)
					}
				}
				seen[id] = true
			}
			if len(seen) != len(want) {
				t.Fatalf("iteration %d: Prune(node %d) removed %d blocks, want %d", it, newRoot, len(seen), len(want))
			}
			root = newRoot
			checkTree(t, tr, rt, root)
			for id, i := range want { // a removed block can never come back
				err := tr.InsertBlock(rt.nodes[i].Block, rt.nodes[i].Info)
				if !errors.Is(err, blocktree.ErrBelowRoot) && !errors.Is(err, blocktree.ErrMissingParent) {
					t.Fatalf("iteration %d: InsertBlock(removed %s) = %v", it, id.Short(), err)
				}
			}
		}
	}
}
