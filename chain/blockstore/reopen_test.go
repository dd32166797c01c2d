package blockstore_test

import (
	"math/rand/v2"
	"testing"

	"github.com/p2pnode/p2pnode/chain/blockstore"
	"github.com/p2pnode/p2pnode/chain/chaintest"
)

// TestRandomInsertsReopen mixes, over seeded random chains with round gaps
// and forks, the three ways blocks enter the store (InsertChain batches,
// overlapping ones among them; the consensus path of a QC then a block;
// forks off the tree) and reopens the store from disk after every step: it
// must always open, at the same committed block, with nothing to resume.
func TestRandomInsertsReopen(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		rng := rand.New(rand.NewPCG(seed, 9))
		v := chaintest.NewValidators(seed, 4)
		b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 2, TxSize: 20, Seed: seed})
		// The main chain, with round gaps, and forks off it.
		var main []*chaintest.Node
		var forks [][]*chaintest.Node
		parent := b.Genesis()
		for len(main) < 60 {
			r := parent.Round() + 1
			if rng.IntN(8) == 0 {
				r++
			}
			if rng.IntN(6) == 0 && parent.Round() > 0 {
				// a fork of 1 to 3 blocks off parent, at the rounds the
				// main chain then skips
				fp := parent
				var fk []*chaintest.Node
				fr := r
				for range 1 + rng.IntN(3) {
					fp = b.Child(fp, fr)
					fk = append(fk, fp)
					fr++
				}
				forks = append(forks, fk)
				r = fr
			}
			parent = b.Child(parent, r)
			main = append(main, parent)
		}
		path := t.TempDir() + "/s.db"
		o, err := blockstore.Open(path, v.Genesis, blockstore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		reopen := func(step string) {
			want := o.Ledger.Committed()
			if err := o.Disk.Close(); err != nil {
				t.Fatal(err)
			}
			o, err = blockstore.Open(path, v.Genesis, blockstore.Config{})
			if err != nil {
				t.Fatalf("seed %d %s: reopen: %v", seed, step, err)
			}
			if got := o.Ledger.Committed(); got != want {
				t.Fatalf("seed %d %s: committed %d want %d", seed, step, got.Round, want.Round)
			}
			if o.SyncTarget != nil {
				t.Fatalf("seed %d %s: sync target", seed, step)
			}
		}
		i := 0
		fi := 0
		for i < len(main) {
			switch rng.IntN(4) {
			case 0: // single block via ExecuteAndInsertBlock + InsertQC
				n := main[i]
				if err := o.Blocks.InsertQC(*n.Block.QC()); err != nil {
					t.Fatalf("seed %d: parent qc %d: %v", seed, n.Round(), err)
				}
				if _, err := o.Blocks.ExecuteAndInsertBlock(n.Block); err != nil {
					t.Fatalf("seed %d: exec %d: %v", seed, n.Round(), err)
				}
				if rng.IntN(2) == 0 {
					if err := o.Blocks.InsertQC(n.QC); err != nil {
						t.Fatalf("seed %d: qc %d: %v", seed, n.Round(), err)
					}
				}
				i++
			case 1: // a fork whose parent is in the tree
				for fi < len(forks) {
					fk := forks[fi]
					if fk[0].Block.Round() > main[max(i-1, 0)].Round()+4 {
						break
					}
					fi++
					if o.Blocks.BlockExists(fk[0].Block.ParentID()) {
						if err := o.Blocks.InsertChain(chaintest.Blocks(fk)); err != nil {
							t.Fatalf("seed %d: fork: %v", seed, err)
						}
					}
					break
				}
			default: // batch, maybe overlapping
				start := i
				if rng.IntN(3) == 0 {
					start = max(0, i-rng.IntN(4))
				}
				end := min(len(main), i+1+rng.IntN(8))
				if err := o.Blocks.InsertChain(chaintest.Blocks(main[start:end])); err != nil {
					t.Fatalf("seed %d: chain [%d,%d): %v", seed, main[start].Round(), main[end-1].Round(), err)
				}
				i = end
			}
			reopen("step")
		}
		o.Disk.Close()
	}
}
