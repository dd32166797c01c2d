package blocktree_test

import (
	"fmt"
	"testing"

	"github.com/p2pnode/p2pnode/chain/chaintest"
)

const benchChain = 10_000

// benchNodes returns a chain of n blocks in consecutive rounds: every QC
// from the third block on commits a block.
func benchNodes(n int) (*chaintest.Builder, []*chaintest.Node) {
	b := newBuilder(9)
	return b, b.Extend(b.Genesis(), n)
}

// BenchmarkInsertBlock inserts a 10,000-block chain, each block then its
// QC, into a fresh tree.
func BenchmarkInsertBlock(b *testing.B) {
	bld, nodes := benchNodes(benchChain)
	root := genesisRoot(bld)
	ops := 0
	for b.Loop() {
		tr := mustNew(b, root)
		insertAll(b, tr, nodes...)
		ops += len(nodes)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(ops), "ns/block")
}

// BenchmarkPrune commits a 10,000-block tree one block at a time: each step
// takes the blocks to commit and prunes to the committed block.
func BenchmarkPrune(b *testing.B) {
	bld, nodes := benchNodes(benchChain)
	root := genesisRoot(bld)
	ops := 0
	for b.Loop() {
		b.StopTimer()
		tr := mustNew(b, root)
		insertAll(b, tr, nodes...)
		b.StartTimer()
		for i := 0; i+2 < len(nodes); i++ {
			id := nodes[i].Block.ID
			if _, err := tr.BlocksToCommit(id); err != nil {
				b.Fatal(err)
			}
			if _, err := tr.Prune(id, nodes[i+2].QC); err != nil {
				b.Fatal(err)
			}
			ops++
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(ops), "ns/prune")
}

// BenchmarkInsertCommitPrune is the steady state of a syncing node: insert
// a block and its QC, then commit and prune the block its QC commits.
func BenchmarkInsertCommitPrune(b *testing.B) {
	bld, nodes := benchNodes(benchChain)
	root := genesisRoot(bld)
	ops := 0
	for b.Loop() {
		tr := mustNew(b, root)
		for _, n := range nodes {
			insertAll(b, tr, n)
			id := n.QC.CommitInfo().ID
			if !n.QC.CommitsBlock() || id == tr.Root().Block.ID {
				continue
			}
			if _, err := tr.BlocksToCommit(id); err != nil {
				b.Fatal(err)
			}
			if _, err := tr.Prune(id, n.QC); err != nil {
				b.Fatal(err)
			}
		}
		ops += len(nodes)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(ops), "ns/block")
}

// BenchmarkPathFromRoot returns the path to the tip of chains of several
// depths.
func BenchmarkPathFromRoot(b *testing.B) {
	bld, nodes := benchNodes(benchChain)
	tr := mustNew(b, genesisRoot(bld))
	insertAll(b, tr, nodes...)
	for _, depth := range []int{10, 1_000, benchChain} {
		b.Run(fmt.Sprintf("depth=%d", depth), func(b *testing.B) {
			id := nodes[depth-1].Block.ID
			for b.Loop() {
				if p, ok := tr.PathFromRoot(id); !ok || len(p) != depth {
					b.Fatalf("PathFromRoot = %d blocks, %v", len(p), ok)
				}
			}
		})
	}
}
