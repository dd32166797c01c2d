package syncer_test

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/blockstore"
	"github.com/p2pnode/p2pnode/chain/blocktree"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/syncer"
	"github.com/p2pnode/p2pnode/syncer/syncertest"
)

// memPersister keeps what a block store persists, in memory.
type memPersister struct{ *blockstore.MemPersister }

func newMemPersister() *memPersister { return &memPersister{blockstore.NewMemPersister()} }

// has reports whether block id and, if qc, a QC certifying it are stored.
func (p *memPersister) has(id chain.Hash, qc bool) bool {
	return p.HasBlock(id) && (!qc || p.HasQC(id))
}

// saveEvent is one SaveTree call (the ids of the blocks saved and of the
// blocks the saved QCs certify) or, if archived, one ledger commit (the ids
// of the blocks it archived).
type saveEvent struct {
	blocks, qcs []chain.Hash
	archived    bool
}

// recorder is a memPersister that records every SaveTree call in order,
// and, through the ledger storage that wrap returns, the blocks each ledger
// commit archives: the two places a block is persisted. A block a commit
// archives counts as saved by an event of its own, ordered with the rest.
type recorder struct {
	*memPersister
	mu       sync.Mutex
	events   []saveEvent
	saves    map[chain.Hash]int // times each block was saved in the tree
	archives map[chain.Hash]int // times each block was archived
}

func newRecorder() *recorder {
	return &recorder{memPersister: newMemPersister(), saves: map[chain.Hash]int{}, archives: map[chain.Hash]int{}}
}

func (r *recorder) SaveTree(blocks []*chain.Block, qcs []chain.QuorumCert) error {
	var ev saveEvent
	r.mu.Lock()
	for _, b := range blocks {
		ev.blocks = append(ev.blocks, b.ID)
		r.saves[b.ID]++
	}
	for _, qc := range qcs {
		ev.qcs = append(ev.qcs, qc.CertifiedBlock().ID)
	}
	r.events = append(r.events, ev)
	r.mu.Unlock()
	return r.MemPersister.SaveTree(blocks, qcs)
}

// archiver is a ledger storage whose commits a recorder records.
type archiver struct {
	ledger.Storage
	r *recorder
}

// wrap returns st recording the blocks each commit archives.
func (r *recorder) wrap(st ledger.Storage) ledger.Storage { return &archiver{Storage: st, r: r} }

func (a *archiver) Commit(b *ledger.Batch) error {
	if err := a.Storage.Commit(b); err != nil {
		return err
	}
	a.r.mu.Lock()
	defer a.r.mu.Unlock()
	ev := saveEvent{archived: true}
	for _, cb := range b.Blocks {
		ev.blocks = append(ev.blocks, cb.Block.ID)
		a.r.archives[cb.Block.ID]++
	}
	a.r.events = append(a.r.events, ev)
	return nil
}

// log returns the recorded calls.
func (r *recorder) log() []saveEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// counts returns how many times each block was saved in the tree, and how
// many times archived.
func (r *recorder) counts() (saves, archives map[chain.Hash]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.saves), maps.Clone(r.archives)
}

// node is a block store over an in-memory ledger.
type node struct {
	ledger *ledger.Ledger
	store  *blockstore.Store
}

func newNode(t testing.TB, v *chaintest.Validators) *node {
	t.Helper()
	return newNodeWith(t, v, newMemPersister())
}

// newNodeWith returns a node at genesis that persists to p.
func newNodeWith(t testing.TB, v *chaintest.Validators, p blockstore.Persister) *node {
	t.Helper()
	var st ledger.Storage = ledger.NewMemStorage()
	if r, ok := p.(*recorder); ok {
		st = r.wrap(st)
	}
	l, err := ledger.New(st, v.Genesis)
	if err != nil {
		t.Fatal(err)
	}
	root := blocktree.GenesisRoot(v.Genesis)
	s, err := blockstore.New(l, p, root, nil, nil, blockstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return &node{ledger: l, store: s}
}

// world is a chain served by every validator of v over an in-memory network.
type world struct {
	v      *chaintest.Validators
	nodes  []*chaintest.Node
	net    *syncertest.Net
	server *node // every validator serves from this one store
}

// newWorld builds a chain of n blocks and puts every validator on the
// network, serving it.
func newWorld(t testing.TB, validators, n, txs int) *world {
	t.Helper()
	v, nodes := buildChain(validators, n, txs, nil)
	return newWorldFrom(t, v, nodes)
}

// buildChain builds n blocks in consecutive rounds, each QC signed by the
// validators at the indexes signers (nil: all).
func buildChain(validators, n, txs int, signers []int) (*chaintest.Validators, []*chaintest.Node) {
	v := chaintest.NewValidators(11, validators)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: txs, TxSize: 64, Seed: 3, Signers: signers})
	return v, b.Extend(b.Genesis(), n)
}

// newWorldFrom serves nodes (a chain from genesis) from every validator of
// v over a fresh network. The server's highest QC is the last node's.
func newWorldFrom(t testing.TB, v *chaintest.Validators, nodes []*chaintest.Node) *world {
	t.Helper()
	w := &world{v: v, nodes: nodes, net: syncertest.NewNet(), server: newNode(t, v)}
	if err := w.server.store.InsertChain(chaintest.Blocks(w.nodes)); err != nil {
		t.Fatal(err)
	}
	if err := w.server.store.InsertQC(nodes[len(nodes)-1].QC); err != nil {
		t.Fatal(err)
	}
	// The server's state tree follows its ledger, as a validator's does,
	// so that it can serve a snapshot of the committed version.
	if err := w.server.ledger.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, s := range v.Signers {
		w.net.Add(s.ID(), w.honestPeer())
	}
	return w
}

// honestPeer returns a peer serving the world's chain.
func (w *world) honestPeer() *syncertest.Peer {
	return &syncertest.Peer{Blocks: w.server.store, Ledger: w.server.ledger}
}

// syncInfo is the server's SyncInfo: the QC of the last block and the commit
// cert it carries.
func (w *world) syncInfo() *chain.SyncInfo {
	si := w.server.store.SyncInfo(nil)
	return &si
}

func (w *world) author() peer.ID { return w.v.Signers[0].ID() }

// id returns the peer id of validator i.
func (w *world) id(i int) peer.ID { return w.v.Signers[i].ID() }

func (w *world) client(t testing.TB, cfg syncer.Config) (*node, *syncer.Manager) {
	t.Helper()
	return w.clientWith(t, cfg, "client", newMemPersister())
}

// clientWith returns a fresh node at genesis persisting to p, and its
// manager running as self.
func (w *world) clientWith(t testing.TB, cfg syncer.Config, self peer.ID, p blockstore.Persister) (*node, *syncer.Manager) {
	t.Helper()
	c := newNodeWith(t, w.v, p)
	cfg.Logger = slog.New(slog.DiscardHandler)
	m, err := syncer.New(c.store, w.net, w.v.Verifier, self, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, m
}

// checkSynced fails t unless c holds the server's highest QC and committed
// ledger.
// syncAll syncs m, the manager of client c, to the world's chain from its
// author (within a minute) and checks that c holds it.
func (w *world) syncAll(t testing.TB, c *node, m *syncer.Manager) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.SyncTo(ctx, w.syncInfo(), w.author()); err != nil {
		t.Fatal(err)
	}
	w.checkSynced(t, c)
}

func (w *world) checkSynced(t testing.TB, c *node) {
	t.Helper()
	want := w.server.store.HighestQC()
	if got := c.store.HighestQC(); got.CertifiedBlock() != want.CertifiedBlock() {
		t.Fatalf("client highest QC round %d, want %d", got.Round(), want.Round())
	}
	if got, want := c.ledger.Committed(), w.server.ledger.Committed(); got != want {
		t.Fatalf("client committed round %d version %d, server round %d version %d", got.Round, got.Version, want.Round, want.Version)
	}
	if got, want := c.ledger.Version(), w.server.ledger.Version(); got != want {
		t.Fatalf("client ledger version %d, server %d", got, want)
	}
	if got, want := c.ledger.Root(), w.server.ledger.Root(); got != want {
		t.Fatalf("client ledger root %s, server %s", got.Short(), want.Short())
	}
}
