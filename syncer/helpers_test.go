package syncer_test

import (
	"log/slog"
	"sync"
	"testing"

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
type memPersister struct {
	mu     sync.Mutex
	blocks map[chain.Hash]*chain.Block
	qcs    map[chain.Hash]chain.QuorumCert
}

func newMemPersister() *memPersister {
	return &memPersister{blocks: map[chain.Hash]*chain.Block{}, qcs: map[chain.Hash]chain.QuorumCert{}}
}

func (p *memPersister) SaveTree(blocks []*chain.Block, qcs []chain.QuorumCert) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range blocks {
		p.blocks[b.ID] = b
	}
	for _, qc := range qcs {
		p.qcs[qc.CertifiedBlock().ID] = qc
	}
	return nil
}

func (p *memPersister) PruneTree(ids []chain.Hash) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		delete(p.blocks, id)
		delete(p.qcs, id)
	}
	return nil
}

// node is a block store over an in-memory ledger.
type node struct {
	ledger *ledger.Ledger
	store  *blockstore.Store
}

func newNode(t testing.TB, v *chaintest.Validators) *node {
	t.Helper()
	l, err := ledger.New(ledger.NewMemStorage(), v.Genesis)
	if err != nil {
		t.Fatal(err)
	}
	qc := v.Genesis.QC()
	root := blocktree.Root{Block: v.Genesis.Block(), Info: v.Genesis.BlockInfo(), QC: qc, LedgerInfo: qc}
	s, err := blockstore.New(l, newMemPersister(), root, nil, nil, blockstore.Config{})
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
	v := chaintest.NewValidators(11, validators)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: txs, TxSize: 64, Seed: 3})
	w := &world{v: v, nodes: b.Extend(b.Genesis(), n), net: syncertest.NewNet(), server: newNode(t, v)}
	if err := w.server.store.InsertChain(chaintest.Blocks(w.nodes)); err != nil {
		t.Fatal(err)
	}
	last := w.nodes[n-1].QC
	if err := w.server.store.InsertQC(last); err != nil {
		t.Fatal(err)
	}
	for _, s := range v.Signers {
		w.net.Add(s.ID(), &syncertest.Peer{Blocks: w.server.store, Ledger: w.server.ledger})
	}
	return w
}

// syncInfo is the server's SyncInfo: the QC of the last block and the commit
// cert it carries.
func (w *world) syncInfo() *chain.SyncInfo {
	si := w.server.store.SyncInfo(nil)
	return &si
}

func (w *world) author() peer.ID { return w.v.Signers[0].ID() }

func (w *world) client(t testing.TB, cfg syncer.Config) (*node, *syncer.Manager) {
	t.Helper()
	c := newNode(t, w.v)
	cfg.Logger = slog.New(slog.DiscardHandler)
	m, err := syncer.New(c.store, w.net, w.v.Verifier, "client", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, m
}
