package blockstore

import (
	"errors"
	"fmt"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/blocktree"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/chain/store"
)

// Opened is a node's chain state rebuilt from its store file.
type Opened struct {
	// Disk is the open store; the caller closes it.
	Disk *store.Store
	// Ledger is the ledger over Disk.
	Ledger *ledger.Ledger
	// Blocks is the block store over Ledger and Disk.
	Blocks *Store
	// SyncTarget, if not nil, is a fast-forward the node did not finish:
	// resume it (syncer.Manager.ResumeFastForward) before anything else.
	SyncTarget *store.SyncTarget
	// Safety is consensus's saved safety data.
	Safety store.SafetyData
}

// Open opens (or creates) the store file at path for the chain g and
// rebuilds the ledger and the block store from it: the recovered root, then
// the stored blocks and QCs that descend from it, re-executed. Blocks that
// recovery found stale are deleted. During an unfinished fast-forward the
// tree holds only the root — the ledger is between two committed blocks and
// executes nothing until the fast-forward completes and rebuilds the tree.
func Open(path string, g *chain.Genesis, cfg Config) (*Opened, error) {
	disk, err := store.Open(path, g)
	if err != nil {
		return nil, err
	}
	o, err := open(disk, g, cfg)
	if err != nil {
		return nil, errors.Join(err, disk.Close())
	}
	return o, nil
}

func open(disk *store.Store, g *chain.Genesis, cfg Config) (*Opened, error) {
	rd, err := disk.Recover()
	if err != nil {
		return nil, err
	}
	l, err := ledger.New(disk, g)
	if err != nil {
		return nil, err
	}
	stale := rd.Stale
	blocks, qcs := rd.Blocks, rd.QCs
	if rd.SyncTarget != nil {
		for _, b := range blocks {
			if !inTarget(rd.SyncTarget, b.ID) {
				stale = append(stale, b.ID)
			}
		}
		blocks, qcs = nil, nil
	}
	if len(stale) > 0 {
		if err := disk.PruneTree(stale); err != nil {
			return nil, fmt.Errorf("blockstore: prune %d stale blocks: %w", len(stale), err)
		}
	}
	root := blocktree.Root{
		Block:      rd.Root.Block,
		Info:       rd.Root.QC.CertifiedBlock(),
		QC:         rd.Root.QC,
		LedgerInfo: rd.Root.LedgerInfo,
	}
	bs, err := New(l, disk, root, blocks, qcs, cfg)
	if err != nil {
		return nil, err
	}
	return &Opened{Disk: disk, Ledger: l, Blocks: bs, SyncTarget: rd.SyncTarget, Safety: rd.Safety}, nil
}

func inTarget(t *store.SyncTarget, id chain.Hash) bool {
	for _, b := range t.Blocks {
		if b.ID == id {
			return true
		}
	}
	return false
}
