package store

import (
	"cmp"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/ledger"
)

// Root is the committed block a node restarts from.
type Root struct {
	// Block is the block the durable ledger committed last.
	Block *chain.Block
	// QC certifies Block; its CertifiedBlock is the ledger's commit info.
	QC chain.QuorumCert
	// LedgerInfo is a QC whose ledger info commits Block.
	LedgerInfo chain.QuorumCert
}

// SyncTarget is the committed 3-chain of a fast-forward that was interrupted:
// QCs[2] (C2) certifies Blocks[2] (B2) and commits Blocks[0] (B0); QCs[0] and
// QCs[1] certify B0 and B1. State sync resumes toward C2 from the ledger's
// committed version.
type SyncTarget struct {
	Blocks [3]*chain.Block
	QCs    [3]chain.QuorumCert
}

// RecoveryData is everything a node needs to rebuild its block tree and
// consensus state after a restart. See the package documentation for the
// rules that derive it.
type RecoveryData struct {
	// Root is the block tree's root, derived from the durable ledger.
	Root Root
	// Blocks are the stored blocks descending from Root.Block, parents
	// before children (ascending rounds).
	Blocks []*chain.Block
	// QCs are the stored QCs certifying the blocks of Blocks, ascending
	// rounds.
	QCs []chain.QuorumCert
	// SyncTarget is not nil when the node stopped during a fast-forward.
	SyncTarget *SyncTarget
	// Stale are the ids of the stored blocks that are none of the above; they
	// are safe to PruneTree.
	Stale []chain.Hash
	// Safety is the saved safety data (zero if never saved).
	Safety SafetyData
}

// snapshot is the decoded content of the tree buckets.
type snapshot struct {
	blocks  map[chain.Hash]*chain.Block
	qcs     map[chain.Hash]*chain.QuorumCert
	commits map[chain.Hash]chain.Hash // committed block id -> certified block id
}

// Recover reads the store in one read transaction and derives the data a
// node restarts from. It fails with an error wrapping [ErrCorrupt] that says
// what is wrong when the stored data is missing, undecodable or
// inconsistent. Safe for concurrent use, but meant to be called once, before
// anything else writes.
func (s *Store) Recover() (*RecoveryData, error) {
	var rd *RecoveryData
	err := s.view(func(tx *bolt.Tx) error {
		c, err := readCommitted(tx)
		if err != nil {
			return err
		}
		snap, err := readSnapshot(tx)
		if err != nil {
			return err
		}
		rd, err = s.derive(c, snap)
		if err != nil {
			return err
		}
		return readSafety(tx, &rd.Safety)
	})
	if err != nil {
		return nil, err
	}
	return rd, nil
}

func readSnapshot(tx *bolt.Tx) (*snapshot, error) {
	snap := &snapshot{
		blocks:  make(map[chain.Hash]*chain.Block),
		qcs:     make(map[chain.Hash]*chain.QuorumCert),
		commits: make(map[chain.Hash]chain.Hash),
	}
	err := tx.Bucket(bucketBlocks).ForEach(func(k, v []byte) error {
		var b chain.Block
		if err := decodeValue(bucketBlocks, k, v, chain.MaxEncodedBlockSize, &b); err != nil {
			return err
		}
		if len(k) != chain.HashSize || chain.Hash(k) != b.ID {
			return fmt.Errorf("%w: block %s is stored under key %x", ErrCorrupt, b.ID.Short(), k)
		}
		snap.blocks[b.ID] = &b
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = tx.Bucket(bucketQCs).ForEach(func(k, v []byte) error {
		var qc chain.QuorumCert
		if err := decodeValue(bucketQCs, k, v, maxQCSize, &qc); err != nil {
			return err
		}
		id := qc.CertifiedBlock().ID
		if len(k) != chain.HashSize || chain.Hash(k) != id {
			return fmt.Errorf("%w: QC certifying block %s is stored under key %x", ErrCorrupt, id.Short(), k)
		}
		if snap.blocks[id] == nil {
			return fmt.Errorf("%w: QC of round %d certifies block %s, which is missing", ErrCorrupt, qc.Round(), id.Short())
		}
		snap.qcs[id] = &qc
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = tx.Bucket(bucketCommits).ForEach(func(k, v []byte) error {
		var to chain.Hash
		if err := decodeValue(bucketCommits, k, v, maxHashSize, &to); err != nil {
			return err
		}
		if len(k) != chain.HashSize {
			return fmt.Errorf("%w: commit index key %x is not a block id", ErrCorrupt, k)
		}
		qc := snap.qcs[to]
		if qc == nil || qc.CommitInfo().ID != chain.Hash(k) {
			return fmt.Errorf("%w: commit index entry for block %x names block %s, whose QC does not commit it",
				ErrCorrupt, k[:4], to.Short())
		}
		snap.commits[chain.Hash(k)] = to
		return nil
	})
	if err != nil {
		return nil, err
	}
	return snap, nil
}

// derive applies the recovery rules to the ledger summary c and the tree
// snapshot.
func (s *Store) derive(c ledger.Committed, snap *snapshot) (*RecoveryData, error) {
	root, err := s.root(c, snap)
	if err != nil {
		return nil, err
	}
	rd := &RecoveryData{Root: root}

	children := make(map[chain.Hash][]*chain.Block, len(snap.blocks))
	for _, b := range snap.blocks {
		if !b.IsGenesis() {
			children[b.ParentID()] = append(children[b.ParentID()], b)
		}
	}
	inTree := map[chain.Hash]bool{root.Block.ID: true}
	queue := []chain.Hash{root.Block.ID}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		for _, ch := range children[id] {
			if !inTree[ch.ID] {
				inTree[ch.ID] = true
				rd.Blocks = append(rd.Blocks, ch)
				queue = append(queue, ch.ID)
			}
		}
	}
	slices.SortFunc(rd.Blocks, func(a, b *chain.Block) int { return cmp.Compare(a.Round(), b.Round()) })
	for _, b := range rd.Blocks {
		if qc := snap.qcs[b.ID]; qc != nil {
			rd.QCs = append(rd.QCs, *qc)
		}
	}

	rd.SyncTarget, err = syncTarget(c, root.QC.CertifiedBlock(), snap, inTree)
	if err != nil {
		return nil, err
	}
	keep := inTree
	if t := rd.SyncTarget; t != nil {
		for _, b := range t.Blocks {
			keep[b.ID] = true
		}
	}
	for id := range snap.blocks {
		if !keep[id] {
			rd.Stale = append(rd.Stale, id)
		}
	}
	slices.SortFunc(rd.Stale, func(a, b chain.Hash) int { return cmp.Compare(snap.blocks[a].Round(), snap.blocks[b].Round()) })
	return rd, nil
}

// root finds the block the ledger committed last, its QC and the QC that
// commits it, and checks them against the ledger.
func (s *Store) root(c ledger.Committed, snap *snapshot) (Root, error) {
	commit := s.genesisQC.CertifiedBlock()
	if c.LedgerInfo != nil {
		commit = c.LedgerInfo.LedgerInfo.CommitInfo
	}
	where := fmt.Sprintf("root block %s (ledger commit at version %d, round %d)", commit.ID.Short(), commit.Version, commit.Round)
	blk := snap.blocks[commit.ID]
	if blk == nil {
		return Root{}, fmt.Errorf("%w: %s is missing", ErrCorrupt, where)
	}
	qc := snap.qcs[commit.ID]
	if qc == nil {
		return Root{}, fmt.Errorf("%w: %s has no stored QC", ErrCorrupt, where)
	}
	if qc.CertifiedBlock() != commit {
		return Root{}, fmt.Errorf("%w: %s: its QC certifies %s, the ledger committed %s",
			ErrCorrupt, where, infoString(qc.CertifiedBlock()), infoString(commit))
	}
	to, ok := snap.commits[commit.ID]
	if !ok {
		return Root{}, fmt.Errorf("%w: %s has no stored QC committing it", ErrCorrupt, where)
	}
	li := snap.qcs[to]
	if li.CommitInfo() != commit {
		return Root{}, fmt.Errorf("%w: %s: the QC committing it (round %d) commits %s, the ledger committed %s",
			ErrCorrupt, where, li.Round(), infoString(li.CommitInfo()), infoString(commit))
	}
	if c.Version < commit.Version {
		return Root{}, fmt.Errorf("%w: %s is beyond the ledger's version %d", ErrCorrupt, where, c.Version)
	}
	if c.Version == commit.Version {
		acc, err := chain.AccumulatorFromFrontier(c.Version, c.Frontier)
		if err != nil {
			return Root{}, fmt.Errorf("%w: ledger frontier at version %d: %w", ErrCorrupt, c.Version, err)
		}
		if got := acc.Root(); got != commit.ExecutedStateID {
			return Root{}, fmt.Errorf("%w: ledger root %s at version %d differs from %s's state %s",
				ErrCorrupt, got.Short(), c.Version, where, commit.ExecutedStateID.Short())
		}
	}
	return Root{Block: blk, QC: *qc, LedgerInfo: *li}, nil
}

// syncTarget finds the 3-chain of an interrupted fast-forward, if any; root
// is the ledger's commit info.
func syncTarget(c ledger.Committed, root chain.BlockInfo, snap *snapshot, inTree map[chain.Hash]bool) (*SyncTarget, error) {
	liVersion := root.Version
	midSync := c.Version > liVersion
	var best *SyncTarget
	var bestRound uint64
	for committed, certified := range snap.commits {
		c2 := snap.qcs[certified]
		ci := c2.CommitInfo()
		switch {
		case ci.Round <= root.Round || ci.Version < c.Version:
			continue // committed already, or the ledger is past it
		case !midSync && inTree[committed]:
			continue // reached by executing the tree from the root
		}
		t, ok := threeChain(snap, c2)
		if !ok || (best != nil && ci.Round <= bestRound) {
			continue
		}
		best, bestRound = t, ci.Round
	}
	if midSync && best == nil {
		return nil, fmt.Errorf("%w: ledger at version %d is past its ledger info's version %d but no stored 3-chain commits version %d or more",
			ErrCorrupt, c.Version, liVersion, c.Version)
	}
	return best, nil
}

// threeChain returns the 3-chain committed by c2 if all of it is stored.
func threeChain(snap *snapshot, c2 *chain.QuorumCert) (*SyncTarget, bool) {
	b2 := snap.blocks[c2.CertifiedBlock().ID]
	if b2 == nil || b2.IsGenesis() {
		return nil, false
	}
	b1 := snap.blocks[b2.ParentID()]
	if b1 == nil || b1.IsGenesis() {
		return nil, false
	}
	b0 := snap.blocks[b1.ParentID()]
	if b0 == nil || b0.ID != c2.CommitInfo().ID {
		return nil, false
	}
	c0, c1 := snap.qcs[b0.ID], snap.qcs[b1.ID]
	if c0 == nil || c1 == nil {
		return nil, false
	}
	return &SyncTarget{Blocks: [3]*chain.Block{b0, b1, b2}, QCs: [3]chain.QuorumCert{*c0, *c1, *c2}}, true
}

// infoString is a compact form of bi for error messages.
func infoString(bi chain.BlockInfo) string {
	return fmt.Sprintf("{epoch %d, round %d, id %s, state %s, version %d, time %d}",
		bi.Epoch, bi.Round, bi.ID.Short(), bi.ExecutedStateID.Short(), bi.Version, bi.TimestampUsecs)
}
