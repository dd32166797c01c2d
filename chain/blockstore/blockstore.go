package blockstore

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/blocktree"
	"github.com/p2pnode/p2pnode/chain/ledger"
)

// Persister is the durable storage of blocks and QCs. *store.Store
// implements it; each call is one atomic, fsync'd write.
type Persister interface {
	SaveTree(blocks []*chain.Block, qcs []chain.QuorumCert) error
	PruneTree(ids []chain.Hash) error
}

// TreeCommitter is a Persister that is also the ledger's storage and can
// write, in one atomic transaction, what SaveTree(blocks, qcs), the
// ledger's commit of b, and PruneTree(prune) write. *store.Store
// implements it. A block store whose persister is its ledger's storage and
// a TreeCommitter inserts a chain of blocks and the commit it brings with
// one durable write.
type TreeCommitter interface {
	CommitTree(b *ledger.Batch, blocks []*chain.Block, qcs []chain.QuorumCert, prune []chain.Hash) error
}

// treeWrite is what an insert still has to save in the tree's storage.
type treeWrite struct {
	blocks []*chain.Block
	qcs    []chain.QuorumCert
}

// CommitFunc is told about every commit: the newly committed blocks, oldest
// first, and the commit cert that committed the last of them. It runs with
// the store locked and must not call back into it.
type CommitFunc func(committed []*chain.Block, commitCert chain.QuorumCert)

// QCFunc is told about every new highest QC. It runs with the store locked
// and must not call back into it.
type QCFunc func(highest chain.QuorumCert)

// Store is the block store. See the package documentation.
type Store struct {
	ledger   *ledger.Ledger
	persist  Persister
	log      *slog.Logger
	onCommit CommitFunc
	onQC     QCFunc
	// committer is persist as a TreeCommitter, if it is one and the
	// ledger's storage; nil otherwise.
	committer TreeCommitter

	mu   sync.Mutex
	tree *blocktree.Tree
}

// Config configures a Store.
type Config struct {
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
	// OnCommit, if set, is called after every commit.
	OnCommit CommitFunc
	// OnQC, if set, is called when an insert raises the highest QC, after
	// the commit it may bring.
	OnQC QCFunc
}

// New builds the block store from what storage recovered: the root (which
// must be the ledger's committed block), then the stored blocks descending
// from it (executed again, in round order) and their QCs. If the stored QCs
// commit a block past the root — the node stopped between a QC and its
// commit — the commit is completed now.
func New(l *ledger.Ledger, p Persister, root blocktree.Root, blocks []*chain.Block, qcs []chain.QuorumCert, cfg Config) (*Store, error) {
	if got := l.Committed(); got != root.Info {
		return nil, fmt.Errorf("blockstore: root %s (round %d) is not the ledger's committed block %s (round %d)",
			root.Info.ID.Short(), root.Info.Round, got.ID.Short(), got.Round)
	}
	tree, err := blocktree.New(root)
	if err != nil {
		return nil, fmt.Errorf("blockstore: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{ledger: l, persist: p, log: log, onCommit: cfg.OnCommit, onQC: cfg.OnQC, tree: tree}
	if tc, ok := p.(TreeCommitter); ok && sameObject(l.Storage(), p) {
		s.committer = tc
	}
	blocks = slices.Clone(blocks)
	slices.SortFunc(blocks, func(a, b *chain.Block) int { return compareRound(a.Round(), b.Round()) })
	for _, b := range blocks {
		info, err := l.Execute(b)
		if err != nil {
			return nil, fmt.Errorf("blockstore: recover block %s: %w", b.ID.Short(), err)
		}
		if err := tree.InsertBlock(b, info); err != nil {
			return nil, fmt.Errorf("blockstore: recover block %s: %w", b.ID.Short(), err)
		}
	}
	for _, qc := range qcs {
		if err := tree.InsertQC(qc); err != nil {
			return nil, fmt.Errorf("blockstore: recover QC of %s: %w", qc.CertifiedBlock().ID.Short(), err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.commitLocked(s.tree.HighestCommitCert()); err != nil {
		return nil, err
	}
	return s, nil
}

func compareRound(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Ledger returns the ledger.
func (s *Store) Ledger() *ledger.Ledger { return s.ledger }

// Root returns the tree's root: the last committed block.
func (s *Store) Root() blocktree.Root {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tree.Root()
}

// BlockExists reports whether block id is in the tree (root included).
func (s *Store) BlockExists(id chain.Hash) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tree.Exists(id)
}

// Block returns block id from the tree with its executed info.
func (s *Store) Block(id chain.Hash) (*chain.Block, chain.BlockInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tree.Block(id)
}

// GetBlock returns block id from the tree or, once committed, from the
// ledger's archive: what a node serves to peers that fetch blocks.
func (s *Store) GetBlock(id chain.Hash) (*chain.Block, bool) {
	if b, _, ok := s.Block(id); ok {
		return b, true
	}
	cb, ok, err := s.ledger.Block(id)
	if err != nil {
		s.log.Error("cannot read archived block", "block_id", id.Short(), "err", err)
		return nil, false
	}
	if !ok {
		return nil, false
	}
	return cb.Block, true
}

// QC returns the QC that certifies block id, if the tree has it.
func (s *Store) QC(id chain.Hash) (chain.QuorumCert, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tree.QC(id)
}

// HighestQC returns the QC of the highest certified block.
func (s *Store) HighestQC() chain.QuorumCert {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tree.HighestQC()
}

// HighestCommitCert returns the QC with the highest commit.
func (s *Store) HighestCommitCert() chain.QuorumCert {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tree.HighestCommitCert()
}

// HighestCertifiedBlock returns the highest certified block.
func (s *Store) HighestCertifiedBlock() (*chain.Block, chain.BlockInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tree.HighestCertifiedBlock()
}

// PathFromRoot returns the blocks from the root (excluded) to id.
func (s *Store) PathFromRoot(id chain.Hash) ([]*chain.Block, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tree.PathFromRoot(id)
}

// SyncInfo returns the store's highest commit cert and QC with tc.
func (s *Store) SyncInfo(tc *chain.TimeoutCert) chain.SyncInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return chain.SyncInfo{HighestCommitCert: s.tree.HighestCommitCert(), HighestQC: s.tree.HighestQC(), HighestTC: tc}
}

// NeedSync reports whether the block commitCert commits is unknown and
// past the root: the seed's need_sync_for_quorum_cert.
func (s *Store) NeedSync(commitCert *chain.QuorumCert) bool {
	c := commitCert.CommitInfo()
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.tree.Exists(c.ID) && c.Round > s.tree.Root().Info.Round
}

// ExecuteAndInsertBlock executes b on top of its parent, persists it and
// inserts it into the tree. b must have been verified. A block already in
// the tree is not executed again.
func (s *Store) ExecuteAndInsertBlock(b *chain.Block) (chain.BlockInfo, error) {
	if _, info, ok := s.Block(b.ID); ok {
		return info, nil
	}
	if !s.BlockExists(b.ParentID()) {
		return chain.BlockInfo{}, fmt.Errorf("blockstore: insert %s: %w", b.ID.Short(), blocktree.ErrMissingParent)
	}
	info, err := s.ledger.Execute(b)
	if err != nil {
		return chain.BlockInfo{}, fmt.Errorf("blockstore: execute %s: %w", b.ID.Short(), err)
	}
	if err := s.persist.SaveTree([]*chain.Block{b}, nil); err != nil {
		return chain.BlockInfo{}, fmt.Errorf("blockstore: persist %s: %w", b.ID.Short(), err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.tree.InsertBlock(b, info); err != nil {
		return chain.BlockInfo{}, fmt.Errorf("blockstore: insert %s: %w", b.ID.Short(), err)
	}
	return info, nil
}

// InsertQC persists qc and inserts it into the tree; the block it certifies
// must be there. If qc commits a block past the root, the commit follows. A
// QC at or below the root is old news and ignored.
func (s *Store) InsertQC(qc chain.QuorumCert) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if qc.Round() <= s.tree.Root().Info.Round {
		// Committed past already (by a concurrent sync, say): nothing to add.
		return nil
	}
	id := qc.CertifiedBlock().ID
	if have, ok := s.tree.QC(id); ok && have.CommitInfo() == qc.CommitInfo() {
		return nil
	}
	if !s.tree.Exists(id) {
		return fmt.Errorf("blockstore: insert QC of %s: %w", id.Short(), blocktree.ErrMissingBlock)
	}
	if err := s.persist.SaveTree(nil, []chain.QuorumCert{qc}); err != nil {
		return fmt.Errorf("blockstore: persist QC of %s: %w", id.Short(), err)
	}
	before := s.tree.HighestQC()
	defer s.notifyQC(before.Round())
	if err := s.tree.InsertQC(qc); err != nil {
		return fmt.Errorf("blockstore: insert QC of %s: %w", id.Short(), err)
	}
	return s.commitLocked(qc)
}

// notifyQC calls the OnQC hook if the highest QC is now above round. The
// store must be locked.
func (s *Store) notifyQC(round uint64) {
	if hqc := s.tree.HighestQC(); s.onQC != nil && hqc.Round() > round {
		s.onQC(hqc)
	}
}

// InsertChain inserts blocks, oldest first, each the child of the one
// before and the first a child of a block in the tree: for each block its
// QC (which certifies its parent), then the block itself, as the seed's
// fetch_quorum_cert does. All blocks are executed first, then persisted in
// one write (except those the insert commits, which the commit archives),
// then inserted; the highest commit among their QCs is then carried out
// once. Leading blocks at or below the root are skipped.
//
// Every block but the last is executed with its state root deferred
// (ledger.ExecuteCertified): the next block's QC certifies it. The last
// one is executed in full, its state computed now.
func (s *Store) InsertChain(blocks []*chain.Block) error {
	return s.InsertChainCertified(blocks, nil)
}

// InsertChainCertified is InsertChain with cert, if not nil, the QC that
// certifies the last block: its state root is deferred too, so that a
// syncing node computes the state tree in large updates, not for each
// insert. cert is not inserted.
func (s *Store) InsertChainCertified(blocks []*chain.Block, cert *chain.QuorumCert) error {
	// Blocks at or below the root were committed meanwhile (by a concurrent
	// sync, say): there is nothing to insert for them.
	root := s.Root().Info.Round
	for len(blocks) > 0 && blocks[0].Round() <= root {
		blocks = blocks[1:]
	}
	if len(blocks) == 0 {
		return nil
	}
	if !s.BlockExists(blocks[0].ParentID()) {
		return fmt.Errorf("blockstore: insert chain at %s: %w", blocks[0].ID.Short(), blocktree.ErrMissingParent)
	}
	infos := make([]chain.BlockInfo, len(blocks))
	qcs := make([]chain.QuorumCert, len(blocks))
	for i, b := range blocks {
		if i > 0 && b.ParentID() != blocks[i-1].ID {
			return fmt.Errorf("blockstore: insert chain: block %s is not a child of %s", b.ID.Short(), blocks[i-1].ID.Short())
		}
		var info chain.BlockInfo
		var err error
		switch {
		case i+1 < len(blocks):
			// The next block's QC certifies b: its state root is checked
			// later, in one tree update with others'.
			info, err = s.ledger.ExecuteCertified(b, blocks[i+1].QC().CertifiedBlock())
		case cert != nil && cert.CertifiedBlock().ID == b.ID:
			info, err = s.ledger.ExecuteCertified(b, cert.CertifiedBlock())
		default:
			// b's state is computed now, on that of the block this insert
			// commits (checked first, so that the commit reuses its tree).
			if c := highestCommit(blocks); c >= 0 && c < i {
				if err := s.ledger.VerifyState(blocks[c].ID); err != nil {
					return fmt.Errorf("blockstore: state of %s: %w", blocks[c].ID.Short(), err)
				}
			}
			info, err = s.ledger.Execute(b)
		}
		if err != nil {
			return fmt.Errorf("blockstore: execute %s: %w", b.ID.Short(), err)
		}
		infos[i], qcs[i] = info, *b.QC()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	best := s.tree.HighestCommitCert()
	for i := range qcs {
		if c := qcs[i].CommitInfo(); !c.IsEmpty() && c.Round > best.CommitInfo().Round {
			best = qcs[i]
		}
	}
	// Blocks this insert commits go to the ledger's archive with the commit
	// itself, so the tree's storage needs only the new root and what
	// follows it, with the QCs certifying them: its 3-chain among them,
	// which recovery needs to find the root. With a TreeCommitter, they are
	// written in the commit's transaction, before the tree in memory
	// changes. Otherwise they are saved first, which keeps the root
	// recoverable if the process stops between the two writes: it then
	// resumes from the persisted 3-chain (see [Opened.SyncTarget]).
	k := slices.IndexFunc(blocks, func(b *chain.Block) bool { return b.ID == best.CommitInfo().ID })
	from := max(k, 0)
	pending := &treeWrite{blocks: blocks[from:], qcs: qcs}
	if from > 0 {
		pending.qcs = qcs[from+1:] // qcs[from] certifies a block that is not saved
	}
	before := s.tree.HighestQC()
	defer s.notifyQC(before.Round())
	if c := best.CommitInfo(); s.committer != nil && !c.IsEmpty() && c.Round > s.tree.Root().Info.Round {
		return s.insertCommitting(blocks, infos, qcs, best, k, pending)
	}
	if err := s.savePending(pending); err != nil {
		return err
	}
	if err := s.insertLocked(blocks, infos, qcs); err != nil {
		return err
	}
	return s.commitLocked(best)
}

// highestCommit returns the index in blocks of the block that the highest
// commit among their QCs commits, -1 if none of them.
func highestCommit(blocks []*chain.Block) int {
	var best chain.BlockInfo
	for _, b := range blocks {
		if c := b.QC().CommitInfo(); !c.IsEmpty() && c.Round > best.Round {
			best = c
		}
	}
	return slices.IndexFunc(blocks, func(b *chain.Block) bool { return !best.IsEmpty() && b.ID == best.ID })
}

// insertLocked inserts blocks into the tree, each after the QC it carries.
func (s *Store) insertLocked(blocks []*chain.Block, infos []chain.BlockInfo, qcs []chain.QuorumCert) error {
	for i, b := range blocks {
		if err := s.tree.InsertQC(qcs[i]); err != nil {
			return fmt.Errorf("blockstore: insert QC of %s: %w", qcs[i].CertifiedBlock().ID.Short(), err)
		}
		if err := s.tree.InsertBlock(b, infos[i]); err != nil {
			return fmt.Errorf("blockstore: insert %s: %w", b.ID.Short(), err)
		}
	}
	return nil
}

// insertCommitting is InsertChain's end when the TreeCommitter writes, in
// one transaction, what pending holds, the commit best brings and the
// deletion of the blocks it archives; k is the index in blocks of the block
// best commits, -1 if it is not one of them. The tree in memory changes
// only once that write succeeded: if it fails, the store is as before the
// call.
func (s *Store) insertCommitting(blocks []*chain.Block, infos []chain.BlockInfo, qcs []chain.QuorumCert, best chain.QuorumCert, k int, pending *treeWrite) error {
	c := best.CommitInfo()
	root := s.tree.Root()
	var path []*chain.Block
	if k >= 0 {
		prefix, ok := s.tree.PathFromRoot(blocks[0].ParentID())
		if !ok {
			return fmt.Errorf("blockstore: insert chain at %s: %w", blocks[0].ID.Short(), blocktree.ErrMissingParent)
		}
		path = append(prefix, blocks[:k+1]...)
	} else if s.tree.Exists(c.ID) {
		var err error
		if path, err = s.tree.BlocksToCommit(c.ID); err != nil {
			return fmt.Errorf("blockstore: commit %s: %w", c.ID.Short(), err)
		}
	} else {
		// The commit names a block neither here nor in the tree: nothing
		// to commit yet.
		if err := s.savePending(pending); err != nil {
			return err
		}
		return s.insertLocked(blocks, infos, qcs)
	}
	gone := append(make([]chain.Hash, 0, len(path)), root.Info.ID)
	for _, b := range path[:len(path)-1] {
		gone = append(gone, b.ID)
	}
	err := s.ledger.CommitWith(path, &best.SignedLedgerInfo, func(b *ledger.Batch) error {
		return s.committer.CommitTree(b, pending.blocks, pending.qcs, gone)
	})
	if err != nil {
		return fmt.Errorf("blockstore: commit %s: %w", c.ID.Short(), err)
	}
	// The store holds it all now. An insert that still fails here leaves
	// the tree short of blocks that storage has, which the next start
	// recovers.
	if err := s.insertLocked(blocks, infos, qcs); err != nil {
		return err
	}
	return s.committed(best, path, gone)
}

// sameObject reports whether a and b are the same pointer.
func sameObject(a, b any) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	return va.Kind() == reflect.Pointer && va.Type() == vb.Type() && va.Pointer() == vb.Pointer()
}

// savePending saves what an insert has to save in the tree's storage; nil
// is nothing.
func (s *Store) savePending(w *treeWrite) error {
	if w == nil || len(w.blocks)+len(w.qcs) == 0 {
		return nil
	}
	if err := s.persist.SaveTree(w.blocks, w.qcs); err != nil {
		return fmt.Errorf("blockstore: persist chain at %s: %w", w.blocks[0].ID.Short(), err)
	}
	return nil
}

// commitLocked commits the block qc commits, if it is past the root and in
// the tree: the ledger commits the path (durably), then the tree is pruned
// and the pruned forks are deleted from storage and from the ledger.
func (s *Store) commitLocked(qc chain.QuorumCert) error {
	c := qc.CommitInfo()
	root := s.tree.Root()
	if c.IsEmpty() || c.Round <= root.Info.Round || !s.tree.Exists(c.ID) {
		return nil
	}
	path, err := s.tree.BlocksToCommit(c.ID)
	if err != nil {
		return fmt.Errorf("blockstore: commit %s: %w", c.ID.Short(), err)
	}
	if err := s.ledger.Commit(path, &qc.SignedLedgerInfo); err != nil {
		return fmt.Errorf("blockstore: commit %s: %w", c.ID.Short(), err)
	}
	return s.committed(qc, path, nil)
}

// committed follows a durable commit of path by qc: the tree is pruned to
// the new root, and the pruned blocks are forgotten by the ledger and
// deleted from storage, but for those gone already.
func (s *Store) committed(qc chain.QuorumCert, path []*chain.Block, gone []chain.Hash) error {
	c := qc.CommitInfo()
	removed, err := s.tree.Prune(c.ID, qc)
	if err != nil {
		return fmt.Errorf("blockstore: prune to %s: %w", c.ID.Short(), err)
	}
	// The committed blocks are in the ledger's archive now; the forks are
	// dead. Neither belongs to the tree any more.
	s.ledger.Forget(removed...)
	if len(gone) > 0 {
		deleted := make(map[chain.Hash]bool, len(gone))
		for _, id := range gone {
			deleted[id] = true
		}
		removed = slices.DeleteFunc(removed, func(id chain.Hash) bool { return deleted[id] })
	}
	if len(removed) > 0 {
		if err := s.persist.PruneTree(removed); err != nil {
			// The commit stands; stale blocks are found and pruned at the
			// next start.
			s.log.Error("cannot delete pruned blocks", "count", len(removed), "err", err)
		}
	}
	s.log.Debug("committed", "block_id", c.ID.Short(), "round", c.Round, "version", c.Version, "blocks", len(path))
	if s.onCommit != nil {
		s.onCommit(path, qc)
	}
	return nil
}

// SaveTree persists blocks and QCs without touching the tree: the seed's
// save_tree of the committed 3-chain before a state sync starts.
func (s *Store) SaveTree(blocks []*chain.Block, qcs []chain.QuorumCert) error {
	if err := s.persist.SaveTree(blocks, qcs); err != nil {
		return fmt.Errorf("blockstore: save tree: %w", err)
	}
	return nil
}

// ErrLedgerBehind means Rebuild was called before the ledger reached the new
// root.
var ErrLedgerBehind = errors.New("blockstore: ledger has not reached the new root")

// Rebuild replaces the tree after a state sync: root is the newly committed
// block B0 with its QC C0 and the commit cert C2; blocks are its verified
// descendants (B1, B2) and qcs theirs (C1, C2). The ledger must already be
// at B0. Everything of the old tree is dropped and deleted from storage.
func (s *Store) Rebuild(root blocktree.Root, blocks []*chain.Block, qcs []chain.QuorumCert) error {
	if got := s.ledger.Committed(); got != root.Info {
		return fmt.Errorf("%w: ledger at %s round %d, root %s round %d", ErrLedgerBehind,
			got.ID.Short(), got.Round, root.Info.ID.Short(), root.Info.Round)
	}
	executed := make([]blocktree.ExecutedBlock, 0, len(blocks))
	for _, b := range blocks {
		info, err := s.ledger.Execute(b)
		if err != nil {
			return fmt.Errorf("blockstore: rebuild: execute %s: %w", b.ID.Short(), err)
		}
		executed = append(executed, blocktree.ExecutedBlock{Block: b, Info: info})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	stale := s.tree.IDs()
	if err := s.tree.Rebuild(root, executed, qcs); err != nil {
		return fmt.Errorf("blockstore: rebuild: %w", err)
	}
	stale = slices.DeleteFunc(stale, s.tree.Exists)
	s.ledger.Forget(stale...)
	if len(stale) > 0 {
		if err := s.persist.PruneTree(stale); err != nil {
			s.log.Error("cannot delete blocks of the old tree", "count", len(stale), "err", err)
		}
	}
	return nil
}
