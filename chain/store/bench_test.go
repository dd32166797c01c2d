package store_test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/chain/store"
)

func benchStore(b *testing.B, g *chain.Genesis) *store.Store {
	b.Helper()
	st, err := store.Open(filepath.Join(b.TempDir(), "bench.db"), g)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// BenchmarkCommit commits ledger batches of `blocks` blocks of 100
// transactions of 100 bytes each, fsync on; blocks/s is the committed blocks
// per second of Commit time (building the batch is not timed).
func BenchmarkCommit(b *testing.B) {
	const txsPerBlock, txSize = 100, 100
	for _, blocks := range []int{1, 64} {
		b.Run(fmt.Sprintf("blocks=%d", blocks), func(b *testing.B) {
			v := chaintest.NewValidators(41, 4)
			st := benchStore(b, v.Genesis)
			rng := rand.New(rand.NewPCG(41, 1))
			m := newLedgerSim()
			txs := make([][]byte, blocks*txsPerBlock)
			b.SetBytes(int64(len(txs) * txSize))
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				for i := range txs {
					key := make([]byte, 8)
					for j := range key {
						key[j] = byte(rng.Uint32())
					}
					val := make([]byte, txSize-11)
					tx, err := chain.EncodeKV(key, val)
					if err != nil {
						b.Fatal(err)
					}
					txs[i] = tx
				}
				batch := m.batch(txs, nil)
				acc, err := chain.AccumulatorFromFrontier(batch.StartVersion+uint64(len(txs)), batch.Frontier)
				if err != nil {
					b.Fatal(err)
				}
				m.acc = acc // advance the model's accumulator only: the rest would grow with b.N
				b.StartTimer()
				if err := st.Commit(batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*blocks)/b.Elapsed().Seconds(), "blocks/s")
		})
	}
}

// BenchmarkSaveTree saves one block of 100 transactions of 100 bytes with
// its QC per operation, fsync on.
func BenchmarkSaveTree(b *testing.B) {
	v := chaintest.NewValidators(42, 4)
	bld := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 100, TxSize: 100, Seed: 42})
	st := benchStore(b, v.Genesis)
	nodes := bld.Extend(bld.Genesis(), 256)
	i := 0
	for b.Loop() {
		n := nodes[i%len(nodes)]
		if err := st.SaveTree([]*chain.Block{n.Block}, []chain.QuorumCert{n.QC}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkRecover recovers a store holding a tree of 1000 blocks of 10
// transactions above the root.
func BenchmarkRecover(b *testing.B) {
	v := chaintest.NewValidators(43, 4)
	bld := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 10, TxSize: 100, Seed: 43})
	st := benchStore(b, v.Genesis)
	nodes := bld.Extend(bld.Genesis(), 1000)
	for i := 0; i < len(nodes); i += 100 {
		part := nodes[i : i+100]
		qcs := make([]chain.QuorumCert, len(part))
		for j, n := range part {
			qcs[j] = n.QC
		}
		if err := st.SaveTree(chaintest.Blocks(part), qcs); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		rd, err := st.Recover()
		if err != nil {
			b.Fatal(err)
		}
		if len(rd.Blocks) != len(nodes) {
			b.Fatalf("recovered %d blocks", len(rd.Blocks))
		}
	}
}
