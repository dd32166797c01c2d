package consensus_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/blockstore"
	"github.com/p2pnode/p2pnode/chain/blocktree"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/chain/store"
	"github.com/p2pnode/p2pnode/consensus"
	"github.com/p2pnode/p2pnode/syncer"
	"github.com/p2pnode/p2pnode/syncer/syncertest"
)

// memSafety is an in-memory SafetyStorage.
type memSafety struct {
	mu sync.Mutex
	sd store.SafetyData
}

func (m *memSafety) SafetyData() (store.SafetyData, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sd, nil
}

func (m *memSafety) SaveSafetyData(sd store.SafetyData) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sd = sd
	return nil
}

// txPool is a Mempool of key/value transactions made up on demand.
type txPool struct {
	mu   sync.Mutex
	name string
	rng  *rand.Rand
	n    int
}

func (p *txPool) Pull(maxTxs, maxBytes int) [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out [][]byte
	size := 0
	for range min(2, maxTxs) {
		val := make([]byte, 16)
		for i := range val {
			val[i] = byte(p.rng.Uint32())
		}
		tx, err := chain.EncodeKV(fmt.Appendf(nil, "%s-%d", p.name, p.n), val)
		if err != nil || size+len(tx) > maxBytes {
			break
		}
		p.n++
		size += len(tx)
		out = append(out, tx)
	}
	return out
}

// commitLog records the blocks a node commits, in order.
type commitLog struct {
	mu      sync.Mutex
	blocks  []chain.BlockInfo
	target  int
	reached chan struct{}
}

func (c *commitLog) record(bs []*chain.Block, _ chain.QuorumCert) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range bs {
		c.blocks = append(c.blocks, b.Info(chain.Hash{}, chain.Hash{}, 0))
	}
	if c.reached != nil && len(c.blocks) >= c.target {
		close(c.reached)
		c.reached = nil
	}
}

// expect returns a channel closed once n blocks are committed.
func (c *commitLog) expect(n int) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan struct{})
	if len(c.blocks) >= n {
		close(ch)
		return ch
	}
	c.target, c.reached = n, ch
	return ch
}

func (c *commitLog) snapshot() []chain.BlockInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]chain.BlockInfo(nil), c.blocks...)
}

// instance is one consensus node: a validator, or one of a Byzantine
// validator's twins.
type instance struct {
	idx     int
	id      peer.ID
	signer  *chain.Signer
	honest  bool
	safety  consensus.SafetyStorage
	pool    *txPool
	commits *commitLog
	dir     string // non-empty: a chain/store file in dir

	st     *store.Store
	ledger *ledger.Ledger
	bs     atomic.Pointer[blockstore.Store]
	snet   *syncertest.Net
	sync   *syncer.Manager

	gen    atomic.Uint64                    // bumped when the node stops: its old engine's sends are lost
	engine atomic.Pointer[consensus.Engine] // nil while stopped
	last   atomic.Pointer[consensus.Engine] // the latest engine, running or not
	cancel context.CancelFunc
	done   chan struct{}
}

// clusterOpts configure a cluster.
type clusterOpts struct {
	seed       uint64
	validators int
	twins      bool // validator 0 runs as two instances with its key
	disk       bool // chain/store files instead of memory
	minDelay   time.Duration
	maxDelay   time.Duration
	drop       float64
	cfg        func(*consensus.Config)
	debugLogs  bool // the engines' debug logs to stderr
}

// cluster is N in-process validators over a router.
type cluster struct {
	tb     testing.TB
	v      *chaintest.Validators
	cfg    consensus.Config
	router *router
	insts  []*instance
	began  time.Time
}

func newCluster(tb testing.TB, o clusterOpts) *cluster {
	tb.Helper()
	if o.validators == 0 {
		o.validators = 4
	}
	c := &cluster{tb: tb, v: chaintest.NewValidators(o.seed+1, o.validators), cfg: consensus.DefaultConfig(), began: time.Now()}
	c.cfg.Logger = slog.New(slog.DiscardHandler)
	if o.debugLogs {
		c.cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if o.cfg != nil {
		o.cfg(&c.cfg)
	}
	c.router = &router{rng: rand.New(rand.NewPCG(o.seed, 0x726f75746572)), minDelay: o.minDelay, maxDelay: o.maxDelay, drop: o.drop,
		proposals: map[uint64]map[chain.Hash]bool{}, votes: map[uint64]map[chain.Hash]bool{}}
	if o.twins {
		c.router.watch = c.v.Signers[0].ID()
	}
	for i, s := range c.v.Signers {
		c.insts = append(c.insts, &instance{idx: i, id: s.ID(), signer: s, honest: !(o.twins && i == 0)})
	}
	if o.twins {
		c.insts = append(c.insts, &instance{idx: len(c.insts), id: c.v.Signers[0].ID(), signer: c.v.Signers[0]})
	}
	for _, in := range c.insts {
		in.safety = &memSafety{}
		in.pool = &txPool{name: fmt.Sprintf("n%d", in.idx), rng: rand.New(rand.NewPCG(o.seed, uint64(in.idx)))}
		in.commits = &commitLog{}
		if o.disk {
			in.dir = tb.TempDir()
		}
		c.open(in)
	}
	c.router.insts = c.insts
	for _, in := range c.insts {
		c.connect(in)
	}
	tb.Cleanup(c.stopAll)
	return c
}

// open builds in's ledger, block store and syncer, from its store file
// when it has one.
func (c *cluster) open(in *instance) {
	c.tb.Helper()
	g := c.v.Genesis
	bcfg := blockstore.Config{OnCommit: in.commits.record}
	var (
		bs  *blockstore.Store
		err error
	)
	if in.dir == "" {
		if in.ledger, err = ledger.New(ledger.NewMemStorage(), g); err != nil {
			c.tb.Fatal(err)
		}
		bs, err = blockstore.New(in.ledger, blockstore.NewMemPersister(), blocktree.GenesisRoot(g), nil, nil, bcfg)
	} else {
		o, oerr := blockstore.Open(in.dir+"/node.db", g, bcfg)
		if oerr != nil {
			c.tb.Fatal(oerr)
		}
		c.tb.Cleanup(func() { _ = o.Disk.Close() })
		in.st, in.safety, in.ledger, bs = o.Disk, o.Disk, o.Ledger, o.Blocks
	}
	if err != nil {
		c.tb.Fatal(err)
	}
	in.bs.Store(bs)
	in.snet = syncertest.NewNet()
	scfg := syncer.DefaultConfig()
	scfg.Seed = uint64(in.idx)
	if in.sync, err = syncer.New(bs, in.snet, c.v.Verifier, in.id, scfg); err != nil {
		c.tb.Fatal(err)
	}
}

// connect puts every other validator on in's sync network, and in on
// theirs. A Byzantine validator's twins serve the blocks of both.
func (c *cluster) connect(in *instance) {
	for _, other := range c.insts {
		if other.id == in.id {
			continue
		}
		other.snet.Add(in.id, c.peerOf(in.id))
		in.snet.Add(other.id, c.peerOf(other.id))
	}
}

func (c *cluster) peerOf(id peer.ID) *syncertest.Peer {
	var same []*instance
	for _, in := range c.insts {
		if in.id == id {
			same = append(same, in)
		}
	}
	src := syncer.BlockSourceFunc(func(h chain.Hash) (*chain.Block, bool) {
		for _, in := range same {
			if b, ok := in.bs.Load().GetBlock(h); ok {
				return b, true
			}
		}
		return nil, false
	})
	return &syncertest.Peer{Blocks: src, Ledger: same[0].ledger}
}

// start runs a new engine for in.
func (c *cluster) start(in *instance) {
	c.tb.Helper()
	cfg := c.cfg
	cfg.Logger = cfg.Logger.With("node", in.idx)
	eng, err := consensus.New(consensus.Components{
		Signer: in.signer, Verifier: c.v.Verifier, Store: in.bs.Load(), Syncer: in.sync,
		Network: &endpoint{r: c.router, from: in, gen: in.gen.Load()}, Safety: in.safety, Mempool: in.pool,
	}, cfg)
	if err != nil {
		c.tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel, in.done = cancel, make(chan struct{})
	in.engine.Store(eng)
	in.last.Store(eng)
	go func() {
		defer close(in.done)
		if err := eng.Run(ctx); err != nil {
			c.tb.Errorf("node %d: Run: %v", in.idx, err)
		}
	}()
}

func (c *cluster) startAll() {
	for _, in := range c.insts {
		c.start(in)
	}
}

// stop stops in's engine and waits for it; the network loses its messages
// until it starts again.
func (c *cluster) stop(in *instance) {
	if in.engine.Load() == nil {
		return
	}
	in.gen.Add(1)
	in.engine.Store(nil)
	in.cancel()
	<-in.done
}

func (c *cluster) stopAll() {
	for _, in := range c.insts {
		c.stop(in)
	}
}

func (c *cluster) honest() []*instance {
	var out []*instance
	for _, in := range c.insts {
		if in.honest {
			out = append(out, in)
		}
	}
	return out
}

func (c *cluster) status(in *instance) consensus.Status {
	if e := in.last.Load(); e != nil {
		return e.Status()
	}
	return consensus.Status{}
}

// minCommitted returns the lowest committed round among ins.
func (c *cluster) minCommitted(ins []*instance) uint64 {
	m := ^uint64(0)
	for _, in := range ins {
		m = min(m, in.bs.Load().Root().Info.Round)
	}
	return m
}

// pass lets exactly d of virtual time pass.
func pass(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	<-t.C
}

// waitFor lets virtual time pass, in steps of 100 ms, until cond holds or
// limit has passed; it reports whether cond held.
func waitFor(limit time.Duration, cond func() bool) bool {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	end := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(end) {
			return false
		}
		<-tick.C
	}
	return true
}

// checkSafety checks that the honest nodes committed one chain: each log
// has increasing rounds, two logs never commit different blocks in a round,
// and a log without gaps is a prefix of every longer gap-free log.
func (c *cluster) checkSafety() {
	c.tb.Helper()
	honest := c.honest()
	logs := make([][]chain.BlockInfo, 0, len(honest))
	for _, in := range honest {
		logs = append(logs, in.commits.snapshot())
	}
	byRound := map[uint64]chain.Hash{}
	for i, l := range logs {
		for k, b := range l {
			if k > 0 && b.Round <= l[k-1].Round {
				c.tb.Fatalf("node %d committed round %d after round %d", i, b.Round, l[k-1].Round)
			}
			if id, ok := byRound[b.Round]; ok && id != b.ID {
				c.tb.Fatalf("conflicting commits in round %d: %s and %s", b.Round, id.Short(), b.ID.Short())
			}
			byRound[b.Round] = b.ID
		}
	}
	for i := range logs {
		for j := range logs {
			a, b := logs[i], logs[j]
			if len(a) > len(b) || honest[i].sync.Stats().FastForwards > 0 || honest[j].sync.Stats().FastForwards > 0 {
				continue
			}
			for k := range a {
				if a[k].ID != b[k].ID {
					c.tb.Fatalf("node %d's commits are not a prefix of node %d's at index %d", i, j, k)
				}
			}
		}
	}
}

// logStatus logs every node's status and the virtual time elapsed.
func (c *cluster) logStatus(t *testing.T) {
	t.Logf("virtual time %v, messages delivered %d, lost %d", time.Since(c.began).Round(time.Millisecond),
		c.router.delivered.Load(), c.router.lost.Load())
	for _, in := range c.insts {
		t.Logf("node %d: %+v sync %+v", in.idx, c.status(in), in.sync.Stats())
	}
}
