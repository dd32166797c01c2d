package syncer_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/blockstore"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/syncer"
	"github.com/p2pnode/p2pnode/syncer/syncertest"
)

// The benchmarks' chain: benchBlocks blocks of 100 transactions of 100 bytes,
// every QC signed by all 4 validators. Building it signs 50,000 signatures,
// so it is built once per process and shared by every benchmark.
const (
	benchBlocks     = 10_000
	benchTxs        = 100
	benchTxSize     = 100
	benchValidators = 4
	// benchSeedGap is the gap the seed mode catches up. One block per
	// request makes it at least latency × gap, so it syncs fewer blocks
	// than the full mode to keep an iteration short; both report blocks/s,
	// which keeps their ratio meaningful.
	benchSeedGap = 1_000
	// benchStateBlocks blocks make the ledger state sync copies: 200,000
	// transactions.
	benchStateBlocks = 2_000
)

type benchChain struct {
	v     *chaintest.Validators
	nodes []*chaintest.Node
	byID  map[chain.Hash]*chain.Block
}

var (
	benchChainOnce sync.Once
	benchChainVal  *benchChain
)

func getBenchChain() *benchChain {
	benchChainOnce.Do(func() {
		v := chaintest.NewValidators(21, benchValidators)
		bl := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: benchTxs, TxSize: benchTxSize, Seed: 5})
		c := &benchChain{v: v, nodes: bl.Extend(bl.Genesis(), benchBlocks), byID: make(map[chain.Hash]*chain.Block, benchBlocks+1)}
		c.byID[v.Genesis.Block().ID] = v.Genesis.Block()
		for _, n := range c.nodes {
			c.byID[n.Block.ID] = n.Block
		}
		benchChainVal = c
	})
	return benchChainVal
}

// syncInfo returns the SyncInfo of a peer whose highest block is the gap-th
// of the chain: its QC is both the highest QC and the highest commit cert.
func (c *benchChain) syncInfo(gap int) *chain.SyncInfo {
	qc := c.nodes[gap-1].QC
	return &chain.SyncInfo{HighestCommitCert: qc, HighestQC: qc}
}

// net returns a network where every validator serves, after latency, the
// whole chain by id and the committed part of it by round.
func (c *benchChain) net(b *testing.B, latency time.Duration) *syncertest.Net {
	src := syncer.BlockSourceFunc(func(id chain.Hash) (*chain.Block, bool) {
		b, ok := c.byID[id]
		return b, ok
	})
	server := getCommitted(b, benchBlocks)
	n := syncertest.NewNet()
	for _, s := range c.v.Signers {
		n.Add(s.ID(), &syncertest.Peer{Blocks: src, Ledger: server.ledger, Latency: latency})
	}
	return n
}

// BenchmarkCatchUp measures block catch-up: a fresh node syncs to a peer
// ahead by a gap of blocks (fetched, verified, executed, committed),
// fast-forward disabled so that every block takes the block path. The seed
// mode is SeedConfig (one block per request, one peer at a time, each block
// persisted as it is inserted) and catches up benchSeedGap blocks; the full
// mode is DefaultConfig and catches up benchBlocks blocks. The node stores
// on disk (bbolt, fsync on, as a node runs) or in memory (the ledger's
// MemStorage and blockstore.MemPersister: no I/O at all).
func BenchmarkCatchUp(b *testing.B) {
	c := getBenchChain()
	for _, store := range []string{"disk", "mem"} {
		for _, mode := range []struct {
			name string
			cfg  syncer.Config
			gap  int
		}{
			{"seed", syncer.SeedConfig(), benchSeedGap},
			{"full", syncer.DefaultConfig(), benchBlocks},
		} {
			for _, latency := range []time.Duration{0, time.Millisecond} {
				b.Run(fmt.Sprintf("store=%s/mode=%s/latency=%v", store, mode.name, latency), func(b *testing.B) {
					net := c.net(b, latency)
					si := c.syncInfo(mode.gap)
					cfg := mode.cfg
					cfg.FastForwardRounds = 1 << 40
					cfg.Logger = slog.New(slog.DiscardHandler)
					var took time.Duration
					for b.Loop() {
						b.StopTimer()
						client := newBenchNode(b, c.v, store)
						m, err := syncer.New(client, net, c.v.Verifier, "client", cfg)
						if err != nil {
							b.Fatal(err)
						}
						ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
						b.StartTimer()
						start := time.Now()
						err = m.SyncTo(ctx, si, c.v.Signers[0].ID())
						took += time.Since(start)
						cancel()
						if err != nil {
							b.Fatal(err)
						}
						if got := client.HighestQC(); got.CertifiedBlock() != si.HighestQC.CertifiedBlock() {
							b.Fatalf("highest QC round %d, want %d", got.Round(), si.HighestQC.Round())
						}
					}
					b.ReportMetric(float64(mode.gap*b.N)/took.Seconds(), "blocks/s")
				})
			}
		}
	}
}

// newBenchNode returns a block store at genesis, on disk in a temporary
// directory or in memory.
func newBenchNode(b *testing.B, v *chaintest.Validators, store string) *blockstore.Store {
	if store == "mem" {
		return newNode(b, v).store
	}
	o, err := blockstore.Open(filepath.Join(b.TempDir(), "store.db"), v.Genesis, blockstore.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { o.Disk.Close() })
	return o.Blocks
}

var (
	committedMu    sync.Mutex
	committedNodes = map[int]*node{}
)

// getCommitted returns an in-memory node whose ledger committed the first
// n blocks of the bench chain, built once per n.
func getCommitted(b *testing.B, n int) *node {
	committedMu.Lock()
	defer committedMu.Unlock()
	if nd := committedNodes[n]; nd != nil {
		return nd
	}
	c := getBenchChain()
	nd := newNode(b, c.v)
	nodes := c.nodes[:n]
	for len(nodes) > 0 {
		k := min(256, len(nodes))
		if err := nd.store.InsertChain(chaintest.Blocks(nodes[:k])); err != nil {
			b.Fatal(err)
		}
		nodes = nodes[k:]
	}
	if err := nd.store.InsertQC(c.nodes[n-1].QC); err != nil {
		b.Fatal(err)
	}
	committedNodes[n] = nd
	return nd
}

// BenchmarkStateSync measures state sync: a fresh in-memory node
// fast-forwards to a peer whose ledger holds 200,000 transactions of 100
// bytes, served by 4 peers with 1 ms latency, with the default window of
// chunks in flight and with one chunk at a time.
func BenchmarkStateSync(b *testing.B) {
	c := getBenchChain()
	server := getCommitted(b, benchStateBlocks)
	si := server.store.SyncInfo(nil)
	n := syncertest.NewNet()
	for _, s := range c.v.Signers {
		n.Add(s.ID(), &syncertest.Peer{Blocks: server.store, Ledger: server.ledger, Latency: time.Millisecond})
	}
	seq := syncer.DefaultConfig()
	seq.ChunksInFlight = 1
	for _, mode := range []struct {
		name string
		cfg  syncer.Config
	}{
		{"default", syncer.DefaultConfig()},
		{"inflight=1", seq},
	} {
		b.Run("chunks="+mode.name, func(b *testing.B) {
			cfg := mode.cfg
			cfg.FastForwardRounds = 0
			cfg.Logger = slog.New(slog.DiscardHandler)
			var txs uint64
			var took time.Duration
			for b.Loop() {
				b.StopTimer()
				client := newNode(b, c.v)
				m, err := syncer.New(client.store, n, c.v.Verifier, "client", cfg)
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
				b.StartTimer()
				err = m.SyncTo(ctx, &si, c.v.Signers[0].ID())
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				st := m.Stats()
				if st.FastForwards != 1 {
					b.Fatalf("%d fast-forwards, want 1", st.FastForwards)
				}
				txs += st.TxsSynced
				took += st.StateSyncTime
			}
			b.ReportMetric(float64(txs)/took.Seconds(), "tx/s")
		})
	}
}
