package store_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/chain/ledger"
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

// benchTxs returns n key/value transactions of size bytes with random
// 8-byte keys, as the load generator makes them.
func benchTxs(rng *rand.Rand, n, size int) [][]byte {
	txs := make([][]byte, n)
	for i := range txs {
		tx := make([]byte, size)
		for j := range tx {
			tx[j] = byte(rng.Uint32())
		}
		tx[0], tx[1] = chain.TxKindKV, 8
		txs[i] = tx
	}
	return txs
}

// benchLedger is a ledger on a store, fed with unsigned blocks: the ledger
// neither checks signatures nor recomputes ids.
type benchLedger struct {
	l      *ledger.Ledger
	serial uint64
}

func newBenchLedger(b *testing.B, st *store.Store, g *chain.Genesis) *benchLedger {
	l, err := ledger.New(st, g)
	if err != nil {
		b.Fatal(err)
	}
	return &benchLedger{l: l}
}

// execute executes one block of txs per element of blocks and returns the
// path and the ledger info committing it.
func (bl *benchLedger) execute(b *testing.B, blocks [][][]byte) ([]*chain.Block, *chain.LedgerInfoWithSignatures) {
	parent := bl.l.Committed()
	path := make([]*chain.Block, len(blocks))
	for i, txs := range blocks {
		bl.serial++
		blk := &chain.Block{Data: chain.BlockData{
			Kind:           chain.KindProposal,
			Epoch:          parent.Epoch,
			Round:          parent.Round + 1,
			TimestampUsecs: parent.TimestampUsecs + 1000,
			QuorumCert:     chain.QuorumCert{VoteData: chain.VoteData{Proposed: parent}},
			Payload:        txs,
		}}
		binary.BigEndian.PutUint64(blk.ID[:], bl.serial)
		blk.ID[31] = 0xbe
		info, err := bl.l.Execute(blk)
		if err != nil {
			b.Fatal(err)
		}
		path[i], parent = blk, info
	}
	return path, &chain.LedgerInfoWithSignatures{LedgerInfo: chain.LedgerInfo{CommitInfo: parent}}
}

// BenchmarkCommit commits, through a ledger on the store, batches of
// `blocks` blocks of 100 transactions of `tx` bytes with random 8-byte
// keys, fsync on, each block archived; blocks/s is the committed blocks per
// second of Commit time (executing the blocks is not timed) and cpu-us/block
// the process CPU time (all threads, the garbage collector's included) per
// committed block spent inside Commit, which a shared machine disturbs less
// than the wall clock.
func BenchmarkCommit(b *testing.B) {
	const txsPerBlock = 100
	for _, txSize := range []int{100, 1024} {
		for _, blocks := range []int{1, 64} {
			b.Run(fmt.Sprintf("tx=%d/blocks=%d", txSize, blocks), func(b *testing.B) {
				v := chaintest.NewValidators(41, 4)
				bl := newBenchLedger(b, benchStore(b, v.Genesis), v.Genesis)
				rng := rand.New(rand.NewPCG(41, 1))
				pool := make([][][]byte, 2*blocks)
				b.SetBytes(int64(blocks * txsPerBlock * txSize))
				b.ReportAllocs()
				var cpu time.Duration
				for b.Loop() {
					b.StopTimer()
					for i := range pool {
						pool[i] = benchTxs(rng, txsPerBlock, txSize)
					}
					path, li := bl.execute(b, pool[:blocks])
					b.StartTimer()
					before := processCPU()
					if err := bl.l.Commit(path, li); err != nil {
						b.Fatal(err)
					}
					cpu += processCPU() - before
				}
				b.ReportMetric(float64(b.N*blocks)/b.Elapsed().Seconds(), "blocks/s")
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*blocks), "cpu-us/block")
			})
		}
	}
}

const (
	benchChunkTxs   = 1000
	benchServerSize = 200_000
)

// benchServer returns a ledger on a store holding benchServerSize
// transactions of 100 bytes in blocks of 1000.
func benchServer(b *testing.B) *ledger.Ledger {
	v := chaintest.NewValidators(44, 4)
	bl := newBenchLedger(b, benchStore(b, v.Genesis), v.Genesis)
	rng := rand.New(rand.NewPCG(44, 1))
	for n := 0; n < benchServerSize; n += 10 * benchChunkTxs {
		blocks := make([][][]byte, 10)
		for i := range blocks {
			blocks[i] = benchTxs(rng, benchChunkTxs, 100)
		}
		if err := bl.l.Commit(bl.execute(b, blocks)); err != nil {
			b.Fatal(err)
		}
	}
	return bl.l
}

// BenchmarkGetChunk serves chunks of 1000 transactions of 100 bytes at
// random versions from a store of 200,000.
func BenchmarkGetChunk(b *testing.B) {
	srv := benchServer(b)
	rng := rand.New(rand.NewPCG(45, 1))
	b.ReportAllocs()
	for b.Loop() {
		start := rng.Uint64N(benchServerSize - benchChunkTxs)
		if _, err := srv.GetChunk(start, benchServerSize, benchChunkTxs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchChunkTxs)/b.Elapsed().Seconds(), "tx/s")
}

// BenchmarkApplyChunk verifies and applies chunks of 1000 transactions of
// 100 bytes to a ledger on a store, fsync on, from version 0 to 200,000.
func BenchmarkApplyChunk(b *testing.B) {
	srv := benchServer(b)
	target := srv.LedgerInfo()
	var chunks []*ledger.Chunk
	for at := uint64(0); at < benchServerSize; at += benchChunkTxs {
		c, err := srv.GetChunk(at, benchServerSize, benchChunkTxs)
		if err != nil {
			b.Fatal(err)
		}
		chunks = append(chunks, c)
	}
	g := chaintest.NewValidators(44, 4).Genesis
	var client *ledger.Ledger
	next := len(chunks)
	b.ReportAllocs()
	for b.Loop() {
		if next == len(chunks) {
			b.StopTimer()
			client = newBenchLedger(b, benchStore(b, g), g).l
			next = 0
			b.StartTimer()
		}
		if err := client.ApplyChunk(chunks[next], target); err != nil {
			b.Fatal(err)
		}
		next++
	}
	b.ReportMetric(float64(b.N*benchChunkTxs)/b.Elapsed().Seconds(), "tx/s")
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
