package ledger

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/transparency-dev/merkle/compact"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/statetree"
)

// Ledger is the state computer: it executes blocks speculatively, commits a
// path of executed blocks, serves chunks of committed transactions with
// proofs, and applies verified chunks during state sync.
//
// A Ledger is safe for concurrent use. Writers (Commit, ApplyChunk,
// FastForward) are serialised among themselves; Execute, GetChunk and the
// accessors do not wait for a writer's storage commit, and see the ledger
// either before or after it.
type Ledger struct {
	st      Storage
	genesis chain.BlockInfo

	// writeMu serialises the writers; it is taken before mu.
	writeMu sync.Mutex

	mu          sync.Mutex
	version     uint64             // number of durable transactions
	treeVersion uint64             // version of the durable state tree, at most version
	acc         *chain.Accumulator // durable accumulator, size version; never mutated
	li          *chain.LedgerInfoWithSignatures
	committed   chain.BlockInfo
	results     map[chain.Hash]*result
}

// result is the speculative execution of one block. Its fields are never
// modified once it is stored, but for its state tree, which is computed at
// most once, when the block executes or, if its root was deferred, when
// the tree is first needed.
type result struct {
	info   chain.BlockInfo
	parent chain.Hash
	acc    *chain.Accumulator // after the block
	txs    [][]byte           // the block's payload (a reference)
	nodes  []Node             // accumulator nodes the block's append completes

	treeMu sync.Mutex                // held while the tree is computed
	tree   atomic.Pointer[stateTree] // nil: none of its own, or not computed yet
}

func (r *result) loadTree() *stateTree   { return r.tree.Load() }
func (r *result) storeTree(t *stateTree) { r.tree.Store(t) }

// New returns the ledger stored in st. An empty storage is a ledger at the
// genesis g: its committed block is g's genesis block, at version 0.
func New(st Storage, g *chain.Genesis) (*Ledger, error) {
	if st == nil || g == nil {
		return nil, errors.New("ledger: nil storage or genesis")
	}
	c, err := st.Committed()
	if err != nil {
		return nil, fmt.Errorf("ledger: load: %w", err)
	}
	acc, err := chain.AccumulatorFromFrontier(c.Version, c.Frontier)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	l := &Ledger{
		st:      st,
		genesis: g.BlockInfo(),
		version: c.Version,
		acc:     acc,
		li:      c.LedgerInfo,
		results: make(map[chain.Hash]*result),

		treeVersion: c.TreeVersion,
	}
	l.committed = l.genesis
	if c.LedgerInfo != nil {
		l.committed = c.LedgerInfo.LedgerInfo.CommitInfo
	}
	switch {
	case l.committed.Version > c.Version:
		return nil, fmt.Errorf("%w: committed version %d past stored version %d", ErrCorrupt, l.committed.Version, c.Version)
	case l.committed.Version == c.Version && acc.Root() != l.committed.ExecutedStateID:
		return nil, fmt.Errorf("%w: accumulator root %s, committed state %s", ErrCorrupt, acc.Root().Short(), l.committed.ExecutedStateID.Short())
	}
	root, err := durableStateRoot(st, c.TreeVersion)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: state tree at version %d: %w", ErrCorrupt, c.TreeVersion, err)
	case l.committed.Version == c.TreeVersion && root != l.committed.StateRoot:
		return nil, fmt.Errorf("%w: state root %s, committed state root %s", ErrCorrupt, root.Short(), l.committed.StateRoot.Short())
	}
	return l, nil
}

// Storage returns the storage the ledger commits to.
func (l *Ledger) Storage() Storage { return l.st }

// Committed returns the info of the last committed block: the genesis
// block's at first, and after a completed state sync the target's commit
// info.
func (l *Ledger) Committed() chain.BlockInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.committed
}

// Version returns the number of durable transactions. In the middle of a
// state sync it is past Committed().Version.
func (l *Ledger) Version() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.version
}

// Root returns the root of the accumulator of the durable transactions.
func (l *Ledger) Root() chain.Hash {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acc.Root()
}

// Frontier returns the version and the accumulator frontier of the durable
// ledger (see [chain.Accumulator.Frontier]): what [VerifyChunk] checks a
// chunk against.
func (l *Ledger) Frontier() (uint64, []chain.Hash) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.version, l.acc.Frontier()
}

// LedgerInfo returns the latest committed signed ledger info; nil while the
// ledger is at genesis. The caller must not modify it.
func (l *Ledger) LedgerInfo() *chain.LedgerInfoWithSignatures {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.li
}

// Get returns the value of key in the durable state, and whether it is set.
// In the middle of a state sync the durable state is that of Version().
func (l *Ledger) Get(key []byte) ([]byte, bool, error) {
	return l.st.Get(key)
}

// Execute executes b speculatively on top of its parent, which must be the
// committed block or an executed block not yet committed (else
// ErrUnknownParent), and returns b's executed info: its accumulator root
// and its state tree's root. The result is kept until b is committed or
// dropped (Commit, Forget); executing b again returns the same info, and
// executing the committed block returns its info. In the middle of a state
// sync only the committed block's accumulator is unknown, so a child of it
// fails with ErrSyncing. The caller has verified b; execution itself
// cannot fail on a transaction. b and its payload must not be modified
// afterwards.
func (l *Ledger) Execute(b *chain.Block) (chain.BlockInfo, error) {
	return l.execute(b, nil)
}

// ExecuteCertified is Execute for a block whose executed info a quorum
// certified, as quorum: the block's accumulator is computed, but its state
// root is taken from quorum and checked later, when the tree is computed
// for a descendant ([Ledger.Execute]), a check ([Ledger.VerifyState]) or a
// commit, in one update for all the blocks since the last computed tree.
// A syncing node thus pays one tree update per commit rather than per
// block. A block without transactions keeps its parent's root, whatever
// quorum says. The caller compares the info returned with quorum's.
func (l *Ledger) ExecuteCertified(b *chain.Block, quorum chain.BlockInfo) (chain.BlockInfo, error) {
	return l.execute(b, &quorum)
}

func (l *Ledger) execute(b *chain.Block, quorum *chain.BlockInfo) (chain.BlockInfo, error) {
	l.mu.Lock()
	if r, ok := l.results[b.ID]; ok {
		l.mu.Unlock()
		return r.info, nil
	}
	if b.ID == l.committed.ID {
		info := l.committed
		l.mu.Unlock()
		return info, nil
	}
	var (
		parent     *chain.Accumulator
		parentRoot chain.Hash
		lineage    []*result // the parent and its uncommitted ancestors
	)
	if r, ok := l.results[b.ParentID()]; ok {
		parent, parentRoot, lineage = r.acc, r.info.StateRoot, l.lineage(r)
	} else if b.ParentID() == l.committed.ID && !b.IsGenesis() {
		if l.version != l.committed.Version {
			l.mu.Unlock()
			return chain.BlockInfo{}, fmt.Errorf("%w: version %d, committed %d", ErrSyncing, l.version, l.committed.Version)
		}
		parent, parentRoot = l.acc, l.committed.StateRoot
	}
	l.mu.Unlock()
	if parent == nil {
		return chain.BlockInfo{}, fmt.Errorf("%w: block %s parent %s", ErrUnknownParent, b.ID.Short(), b.ParentID().Short())
	}

	// Hash outside the lock: parent accumulators are never mutated.
	txs := b.Payload()
	acc := parent.Clone()
	nodes := make([]Node, 0, 2*len(txs)+1)
	visit := func(id compact.NodeID, h chain.Hash) { nodes = append(nodes, Node{ID: id, Hash: h}) }
	for _, tx := range txs {
		acc.AppendLeaf(chain.TxLeafHash(tx), visit)
	}
	r := &result{
		parent: b.ParentID(),
		acc:    acc,
		txs:    txs,
		nodes:  nodes,
	}
	root := parentRoot
	switch {
	case len(txs) == 0:
	case quorum != nil:
		root = quorum.StateRoot
	default:
		if err := l.settleIfBehind(); err != nil {
			return chain.BlockInfo{}, err
		}
		v, err := l.viewOf(lineage)
		if err != nil {
			return chain.BlockInfo{}, err
		}
		start := parent.Size()
		tb, err := statetree.New(v).Update(treeBase(start), acc.Size(), treeWrites(stateWrites(start, txs)))
		if err != nil {
			return chain.BlockInfo{}, fmt.Errorf("ledger: state of %s: %w", b.ID.Short(), err)
		}
		r.storeTree(newStateTree(tb, treeBase(start)))
		root = tb.Root
	}
	r.info = b.Info(acc.Root(), root, acc.Size())

	l.mu.Lock()
	defer l.mu.Unlock()
	if prev, ok := l.results[b.ID]; ok {
		return prev.info, nil
	}
	l.results[b.ID] = r
	return r.info, nil
}

// Forget drops the speculative results of the blocks ids (pruned forks).
// Unknown ids are ignored.
func (l *Ledger) Forget(ids ...chain.Hash) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		delete(l.results, id)
	}
}

// Commit commits blocks, the path from the committed block (exclusive) to
// li.LedgerInfo.CommitInfo.ID (inclusive), oldest first: each block a child
// of the previous one (ErrNotChild), all executed (ErrNotExecuted), the last
// one executed to exactly li's commit info (ErrCommitMismatch). It writes one
// Batch: the blocks' transactions, the accumulator nodes they complete,
// their state writes, the new frontier and li. It then drops the speculative
// results of the committed blocks and of every block of a round not above
// the committed round. The caller has verified li's signatures.
//
// Committing no block with an li that commits the committed block is a
// no-op. On error the ledger is unchanged.
func (l *Ledger) Commit(blocks []*chain.Block, li *chain.LedgerInfoWithSignatures) error {
	return l.CommitWith(blocks, li, nil)
}

// CommitWith is Commit with the Batch written by write instead of by the
// ledger's Storage.Commit, so that the caller can store more in the same
// atomic write; write must do what Storage.Commit does with the batch,
// all or nothing. A nil write is Storage.Commit.
func (l *Ledger) CommitWith(blocks []*chain.Block, li *chain.LedgerInfoWithSignatures, write func(*Batch) error) error {
	if write == nil {
		write = l.st.Commit
	}
	if li == nil {
		return errors.New("ledger: commit without ledger info")
	}
	target := li.LedgerInfo.CommitInfo
	l.writeMu.Lock()
	defer l.writeMu.Unlock()

	l.mu.Lock()
	if len(blocks) == 0 {
		committed := l.committed
		l.mu.Unlock()
		if target != committed {
			return fmt.Errorf("%w: no block to commit for %s", ErrCommitMismatch, target.ID.Short())
		}
		return nil
	}
	if l.version != l.committed.Version {
		l.mu.Unlock()
		return fmt.Errorf("%w: version %d, committed %d", ErrSyncing, l.version, l.committed.Version)
	}
	path := make([]*result, len(blocks))
	parent := l.committed.ID
	for i, b := range blocks {
		if b.ParentID() != parent {
			l.mu.Unlock()
			return fmt.Errorf("%w: block %d (%s) has parent %s, want %s", ErrNotChild, i, b.ID.Short(), b.ParentID().Short(), parent.Short())
		}
		r, ok := l.results[b.ID]
		if !ok {
			l.mu.Unlock()
			return fmt.Errorf("%w: %s", ErrNotExecuted, b.ID.Short())
		}
		path[i], parent = r, b.ID
	}
	start := l.version
	eager := l.treeVersion == start && treesComputed(path)
	l.mu.Unlock()

	last := path[len(path)-1]
	if last.info != target {
		return fmt.Errorf("%w: executed %s version %d root %s, ledger info %s version %d root %s",
			ErrCommitMismatch, last.info.ID.Short(), last.info.Version, last.info.ExecutedStateID.Short(),
			target.ID.Short(), target.Version, target.ExecutedStateID.Short())
	}
	batch := &Batch{StartVersion: start, Frontier: last.acc.Frontier(), LedgerInfo: li}
	ntx, nnodes := 0, 0
	for _, r := range path {
		ntx += len(r.txs)
		nnodes += len(r.nodes)
	}
	batch.Txs = make([][]byte, 0, ntx)
	batch.Nodes = make([]Node, 0, nnodes)
	for _, r := range path {
		batch.Txs = append(batch.Txs, r.txs...)
		batch.Nodes = append(batch.Nodes, r.nodes...)
	}
	batch.Writes = stateWrites(start, batch.Txs)
	if eager {
		batch.Tree = pathTrees(path)
	}
	batch.Blocks = make([]CommittedBlock, len(blocks))
	for i, b := range blocks {
		batch.Blocks[i] = CommittedBlock{Block: b, Info: path[i].info}
	}
	if err := write(batch); err != nil {
		return fmt.Errorf("ledger: commit: %w", err)
	}

	l.mu.Lock()
	l.version, l.acc, l.li, l.committed = last.info.Version, last.acc, li, target
	if n := len(batch.Tree); n > 0 {
		l.treeVersion = batch.Tree[n-1].Version
	}
	for _, b := range blocks {
		delete(l.results, b.ID)
	}
	for id, r := range l.results {
		if r.info.Round <= target.Round {
			delete(l.results, id)
		}
	}
	l.mu.Unlock()
	return nil
}

// Block returns the committed block id from the archive.
func (l *Ledger) Block(id chain.Hash) (*CommittedBlock, bool, error) { return l.st.Block(id) }

// HasHistoryBelow reports whether the ledger archives the committed chain
// below b, an archived block: b's parent is the genesis block or archived
// too. A ledger that state-synced past some blocks, or pruned them, has no
// history below its first archived block.
func (l *Ledger) HasHistoryBelow(b *chain.Block) bool {
	if b.ParentID() == l.genesis.ID {
		return true
	}
	_, ok, err := l.st.Block(b.ParentID())
	return err == nil && ok
}

// BlocksFrom returns up to limit committed blocks of round fromRound or
// above, in round order, from the archive. A node that state-synced has no
// blocks below the round it synced to.
func (l *Ledger) BlocksFrom(fromRound uint64, limit int) ([]CommittedBlock, error) {
	return l.st.BlocksFrom(fromRound, limit)
}
