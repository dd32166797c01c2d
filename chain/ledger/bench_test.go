package ledger_test

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/chain/ledger"
)

// benchTxs returns n key/value transactions of size bytes over a key space
// of keys keys.
func benchTxs(rng *rand.Rand, n, size, keys int) [][]byte {
	txs := make([][]byte, n)
	for i := range txs {
		tx := make([]byte, size)
		for j := range tx {
			tx[j] = byte(rng.Uint32())
		}
		tx[0], tx[1] = chain.TxKindKV, 8
		binary.BigEndian.PutUint64(tx[2:10], uint64(rng.IntN(keys)))
		txs[i] = tx
	}
	return txs
}

// benchChain makes unsigned blocks on top of parent: the ledger neither
// checks signatures nor recomputes ids, so ids are just distinct.
type benchChain struct {
	rng    *rand.Rand
	serial uint64
}

func (bc *benchChain) block(parent chain.BlockInfo, txs [][]byte) *chain.Block {
	bc.serial++
	b := &chain.Block{Data: chain.BlockData{
		Kind:           chain.KindProposal,
		Epoch:          parent.Epoch,
		Round:          parent.Round + 1,
		TimestampUsecs: parent.TimestampUsecs + 1000,
		QuorumCert:     chain.QuorumCert{VoteData: chain.VoteData{Proposed: parent}},
		Payload:        txs,
	}}
	binary.BigEndian.PutUint64(b.ID[:], bc.serial)
	b.ID[31] = 0xbe
	return b
}

// extend executes and commits blocks of the given transactions on l, one
// block per slice, with an unsigned ledger info.
func (bc *benchChain) extend(tb testing.TB, l *ledger.Ledger, blocks [][][]byte) {
	parent := l.Committed()
	path := make([]*chain.Block, len(blocks))
	for i, txs := range blocks {
		path[i] = bc.block(parent, txs)
		info, err := l.Execute(path[i])
		if err != nil {
			tb.Fatal(err)
		}
		parent = info
	}
	li := &chain.LedgerInfoWithSignatures{LedgerInfo: chain.LedgerInfo{CommitInfo: parent}}
	if err := l.Commit(path, li); err != nil {
		tb.Fatal(err)
	}
}

func genesis() *chain.Genesis { return chaintest.NewValidators(1, 4).Genesis }

func BenchmarkExecute(b *testing.B) {
	g := genesis()
	l, _ := newLedger(b, g)
	bc := &benchChain{rng: rand.New(rand.NewPCG(1, 2))}
	txs := benchTxs(bc.rng, 100, 100, 1<<20)
	blk := bc.block(l.Committed(), txs)
	b.ReportAllocs()
	for b.Loop() {
		bc.serial++
		binary.BigEndian.PutUint64(blk.ID[:], bc.serial)
		if _, err := l.Execute(blk); err != nil {
			b.Fatal(err)
		}
		l.Forget(blk.ID)
	}
	b.ReportMetric(float64(b.N*len(txs))/b.Elapsed().Seconds(), "tx/s")
}

func BenchmarkCommit(b *testing.B) {
	for _, batch := range []int{1, 64} {
		b.Run(map[int]string{1: "blocks=1", 64: "blocks=64"}[batch], func(b *testing.B) {
			g := genesis()
			bc := &benchChain{rng: rand.New(rand.NewPCG(3, 4))}
			pool := make([][][]byte, 256)
			for i := range pool {
				pool[i] = benchTxs(bc.rng, 100, 100, 1<<16)
			}
			l, _ := newLedger(b, g)
			committed := 0
			b.ReportAllocs()
			for b.Loop() {
				if committed >= 200_000 { // bound the memory of MemStorage
					b.StopTimer()
					l, _ = newLedger(b, g)
					committed = 0
					b.StartTimer()
				}
				b.StopTimer()
				parent := l.Committed()
				path := make([]*chain.Block, batch)
				for i := range path {
					path[i] = bc.block(parent, pool[(committed/100+i)%len(pool)])
					info, err := l.Execute(path[i])
					if err != nil {
						b.Fatal(err)
					}
					parent = info
				}
				li := &chain.LedgerInfoWithSignatures{LedgerInfo: chain.LedgerInfo{CommitInfo: parent}}
				b.StartTimer()
				if err := l.Commit(path, li); err != nil {
					b.Fatal(err)
				}
				committed += 100 * batch
			}
			b.ReportMetric(float64(b.N*batch*100)/b.Elapsed().Seconds(), "tx/s")
		})
	}
}

// benchServer returns a ledger of n transactions of 100 bytes.
func benchServer(b *testing.B, n int) *ledger.Ledger {
	b.Helper()
	l, _ := newLedger(b, genesis())
	bc := &benchChain{rng: rand.New(rand.NewPCG(5, 6))}
	for n > 0 {
		k := min(n, 10_000)
		blocks := make([][][]byte, k/1000)
		for i := range blocks {
			blocks[i] = benchTxs(bc.rng, 1000, 100, 1<<30)
		}
		bc.extend(b, l, blocks)
		n -= k
	}
	return l
}

const benchChunkTxs = 1000

func BenchmarkGetChunk(b *testing.B) {
	const size = 100_000
	srv := benchServer(b, size)
	rng := rand.New(rand.NewPCG(7, 8))
	b.ReportAllocs()
	for b.Loop() {
		start := rng.Uint64N(size - benchChunkTxs)
		if _, err := srv.GetChunk(start, size, benchChunkTxs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchChunkTxs)/b.Elapsed().Seconds(), "tx/s")
}

func BenchmarkVerifyChunk(b *testing.B) {
	const size = 100_000
	srv := benchServer(b, size)
	c, err := srv.GetChunk(size/2+3, size, benchChunkTxs)
	if err != nil {
		b.Fatal(err)
	}
	target := srv.Committed()
	b.ReportAllocs()
	for b.Loop() {
		if err := ledger.VerifyChunk(c, c.Left, c.StartVersion, target); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchChunkTxs)/b.Elapsed().Seconds(), "tx/s")
}

func BenchmarkApplyChunk(b *testing.B) {
	const size = 200_000
	srv := benchServer(b, size)
	target := srv.LedgerInfo()
	chunks := make([]*ledger.Chunk, 0, size/benchChunkTxs)
	for v := uint64(0); v < size; v += benchChunkTxs {
		c, err := srv.GetChunk(v, size, benchChunkTxs)
		if err != nil {
			b.Fatal(err)
		}
		chunks = append(chunks, c)
	}
	client, _ := newLedger(b, genesis())
	next := 0
	b.ReportAllocs()
	for b.Loop() {
		if next == len(chunks) {
			b.StopTimer()
			client, _ = newLedger(b, genesis())
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
