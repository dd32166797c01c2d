package blockstore

import (
	"sync"

	"github.com/p2pnode/p2pnode/chain"
)

// MemPersister is a Persister that keeps blocks and QCs in memory: for
// in-process nodes in tests and benchmarks, where durability does not
// matter. It is safe for concurrent use.
type MemPersister struct {
	mu     sync.Mutex
	blocks map[chain.Hash]*chain.Block
	qcs    map[chain.Hash]chain.QuorumCert // by certified block id
}

var _ Persister = (*MemPersister)(nil)

// NewMemPersister returns an empty MemPersister.
func NewMemPersister() *MemPersister {
	return &MemPersister{blocks: map[chain.Hash]*chain.Block{}, qcs: map[chain.Hash]chain.QuorumCert{}}
}

// SaveTree implements Persister.
func (p *MemPersister) SaveTree(blocks []*chain.Block, qcs []chain.QuorumCert) error {
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

// PruneTree implements Persister.
func (p *MemPersister) PruneTree(ids []chain.Hash) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		delete(p.blocks, id)
		delete(p.qcs, id)
	}
	return nil
}

// HasBlock reports whether block id is persisted.
func (p *MemPersister) HasBlock(id chain.Hash) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.blocks[id]
	return ok
}

// HasQC reports whether a QC certifying block id is persisted.
func (p *MemPersister) HasQC(id chain.Hash) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.qcs[id]
	return ok
}
