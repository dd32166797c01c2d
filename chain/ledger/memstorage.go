package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/transparency-dev/merkle/compact"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/statetree"
)

// ErrInvalidBatch is returned by [MemStorage.Commit] for a batch that does
// not extend the stored ledger consistently.
var ErrInvalidBatch = errors.New("ledger: invalid batch")

// ErrNotStored is returned by [MemStorage] for transactions or nodes it does
// not hold.
var ErrNotStored = errors.New("ledger: not stored")

// MemStorage is a [Storage] in memory, for tests and in-process benchmarks.
// It copies what it is given and what it returns, and applies a Batch
// atomically: it validates the whole batch first, then applies it. The zero
// value is an empty storage. It is safe for concurrent use.
type MemStorage struct {
	mu       sync.RWMutex
	txs      segments[[]byte]
	levels   []segments[chain.Hash] // levels[l].at(i) is the hash of node (l, i)
	state    map[string]uint64      // key -> version of the transaction that wrote it last
	frontier []chain.Hash
	li       *chain.LedgerInfoWithSignatures
	blocks   map[chain.Hash]CommittedBlock
	rounds   []uint64     // rounds of the archived blocks, ascending
	byRound  []chain.Hash // ids of the archived blocks, in the order of rounds
	tree     *statetree.MemStore
	treeVer  uint64
}

// NewMemStorage returns an empty MemStorage.
func NewMemStorage() *MemStorage { return &MemStorage{} }

// Committed implements [Storage].
func (m *MemStorage) Committed() (Committed, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return Committed{
		Version:     m.txs.len(),
		Frontier:    slices.Clone(m.frontier),
		LedgerInfo:  cloneLedgerInfo(m.li),
		TreeVersion: m.treeVer,
	}, nil
}

// Txs implements [Storage].
func (m *MemStorage) Txs(start, n uint64) ([][]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if have := m.txs.len(); start > have || n > have-start {
		return nil, fmt.Errorf("%w: transactions [%d, +%d) of %d", ErrNotStored, start, n, have)
	}
	txs := make([][]byte, n)
	for i := range txs {
		txs[i] = m.txs.at(start + uint64(i))
	}
	return cloneTxs(txs), nil
}

// Nodes implements [Storage].
func (m *MemStorage) Nodes(ids []compact.NodeID) ([]chain.Hash, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]chain.Hash, len(ids))
	for i, id := range ids {
		if id.Level >= uint(len(m.levels)) || id.Index >= m.levels[id.Level].len() {
			return nil, fmt.Errorf("%w: node (%d, %d)", ErrNotStored, id.Level, id.Index)
		}
		out[i] = m.levels[id.Level].at(id.Index)
	}
	return out, nil
}

// Get implements [Storage].
func (m *MemStorage) Get(key []byte) ([]byte, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	v, ok := m.state[string(key)]
	if !ok {
		return nil, false, nil
	}
	_, val, err := chain.DecodeKV(m.txs.at(v))
	if err != nil { // check rules it out
		return nil, false, fmt.Errorf("%w: state names version %d", ErrNotStored, v)
	}
	return bytes.Clone(val), true, nil
}

// TxVersion implements [Storage]. It scans the leaves, newest first: a
// MemStorage is for tests, and an index would cost every commit.
func (m *MemStorage) TxVersion(h chain.Hash) (uint64, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if len(m.levels) == 0 {
		return 0, false, nil
	}
	leaves := &m.levels[0]
	for v := leaves.len(); v > 0; v-- {
		if leaves.at(v-1) == h {
			return v - 1, true, nil
		}
	}
	return 0, false, nil
}

// Commit implements [Storage]. It fails with ErrInvalidBatch, changing
// nothing, if b does not start at the stored version, holds a transaction of
// an invalid size, a frontier of the wrong size, a node not covered by the
// ledger after b, out of order or in conflict with a stored one, an empty
// key, a write naming a transaction of another batch or key, or a ledger
// info past the ledger after b. It keeps the version of each write and reads
// values from the transactions.
func (m *MemStorage) Commit(b *Batch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(b); err != nil {
		return err
	}
	for _, tx := range cloneTxs(b.Txs) {
		m.txs.append(tx)
	}
	for _, n := range b.Nodes {
		for uint(len(m.levels)) <= n.ID.Level {
			m.levels = append(m.levels, segments[chain.Hash]{})
		}
		if lv := &m.levels[n.ID.Level]; n.ID.Index == lv.len() {
			lv.append(n.Hash)
		}
	}
	if len(b.Writes) > 0 && m.state == nil {
		m.state = make(map[string]uint64, len(b.Writes))
	}
	for _, w := range b.Writes {
		m.state[string(w.Key)] = w.Version
	}
	for _, cb := range b.Blocks {
		if m.blocks == nil {
			m.blocks = make(map[chain.Hash]CommittedBlock)
		}
		m.blocks[cb.Block.ID] = cb
		m.rounds = append(m.rounds, cb.Block.Round())
		m.byRound = append(m.byRound, cb.Block.ID)
	}
	for _, tb := range b.Tree {
		if m.tree == nil {
			m.tree = statetree.NewMemStore()
		}
		m.tree.Apply(tb)
		m.treeVer = tb.Version
	}
	m.frontier = slices.Clone(b.Frontier)
	if b.LedgerInfo != nil {
		m.li = cloneLedgerInfo(b.LedgerInfo)
	}
	return nil
}

// check validates b against the stored ledger; m.mu is held.
func (m *MemStorage) check(b *Batch) error {
	if b == nil {
		return fmt.Errorf("%w: nil", ErrInvalidBatch)
	}
	version := m.txs.len()
	if b.StartVersion != version {
		return fmt.Errorf("%w: starts at %d, stored version %d", ErrInvalidBatch, b.StartVersion, version)
	}
	for i, tx := range b.Txs {
		if len(tx) == 0 || len(tx) > chain.MaxTxSize {
			return fmt.Errorf("%w: transaction %d has %d bytes", ErrInvalidBatch, i, len(tx))
		}
	}
	end := version + uint64(len(b.Txs))
	if n := compact.RangeSize(0, end); len(b.Frontier) != n {
		return fmt.Errorf("%w: frontier has %d hashes, want %d", ErrInvalidBatch, len(b.Frontier), n)
	}
	var stored, next [64]uint64 // per level: stored nodes, and with the batch's
	for l := range next {
		if l < len(m.levels) {
			stored[l] = m.levels[l].len()
		}
		next[l] = stored[l]
	}
	for _, n := range b.Nodes {
		l, i := n.ID.Level, n.ID.Index
		if l >= 64 || i >= end>>l {
			return fmt.Errorf("%w: node (%d, %d) not within version %d", ErrInvalidBatch, l, i, end)
		}
		switch {
		case i == next[l]:
			next[l]++
		case i > next[l]:
			return fmt.Errorf("%w: node (%d, %d) leaves a gap", ErrInvalidBatch, l, i)
		case i >= stored[l]:
			return fmt.Errorf("%w: node (%d, %d) twice", ErrInvalidBatch, l, i)
		case m.levels[l].at(i) != n.Hash:
			return fmt.Errorf("%w: node (%d, %d) conflicts with the stored one", ErrInvalidBatch, l, i)
		}
	}
	for i, w := range b.Writes {
		if len(w.Key) == 0 {
			return fmt.Errorf("%w: empty key", ErrInvalidBatch)
		}
		if w.Version < version || w.Version >= end {
			return fmt.Errorf("%w: write %d names version %d, outside the batch", ErrInvalidBatch, i, w.Version)
		}
		if k, _, err := chain.DecodeKV(b.Txs[w.Version-version]); err != nil || !bytes.Equal(k, w.Key) {
			return fmt.Errorf("%w: write %d names version %d, which does not write its key", ErrInvalidBatch, i, w.Version)
		}
	}
	last := uint64(0)
	if n := len(m.rounds); n > 0 {
		last = m.rounds[n-1]
	}
	for i, cb := range b.Blocks {
		if cb.Block == nil || cb.Block.Round() <= last || cb.Info.ID != cb.Block.ID || cb.Info.Version > end {
			return fmt.Errorf("%w: archived block %d is nil, out of round order or past the batch", ErrInvalidBatch, i)
		}
		last = cb.Block.Round()
	}
	prev := m.treeVer
	for i, tb := range b.Tree {
		if tb == nil || tb.Version <= prev || tb.Version > end {
			return fmt.Errorf("%w: tree update %d is nil or not at a version in (%d, %d]", ErrInvalidBatch, i, prev, end)
		}
		prev = tb.Version
	}
	if b.LedgerInfo != nil && b.LedgerInfo.LedgerInfo.CommitInfo.Version > end {
		return fmt.Errorf("%w: ledger info at version %d, ledger at %d", ErrInvalidBatch, b.LedgerInfo.LedgerInfo.CommitInfo.Version, end)
	}
	return nil
}

// cloneTxs copies txs into one allocation.
func cloneTxs(txs [][]byte) [][]byte {
	size := 0
	for _, tx := range txs {
		size += len(tx)
	}
	arena := make([]byte, 0, size)
	out := make([][]byte, len(txs))
	for i, tx := range txs {
		arena = append(arena, tx...)
		out[i] = arena[len(arena)-len(tx) : len(arena) : len(arena)]
	}
	return out
}

func cloneLedgerInfo(li *chain.LedgerInfoWithSignatures) *chain.LedgerInfoWithSignatures {
	if li == nil {
		return nil
	}
	c := *li
	c.Signatures = slices.Clone(li.Signatures)
	for i := range c.Signatures {
		c.Signatures[i].Sig = bytes.Clone(c.Signatures[i].Sig)
	}
	return &c
}

// Node implements [statetree.NodeReader].
func (m *MemStorage) Node(k statetree.NodeKey) (*statetree.Node, error) {
	m.mu.RLock()
	t := m.tree
	m.mu.RUnlock()
	if t == nil {
		return nil, fmt.Errorf("%w: %d/%d", statetree.ErrNodeNotFound, k.Version, k.Depth)
	}
	return t.Node(k)
}

// Block implements [Storage]. The block is shared, not copied: blocks are
// immutable once committed.
func (m *MemStorage) Block(id chain.Hash) (*CommittedBlock, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	cb, ok := m.blocks[id]
	if !ok {
		return nil, false, nil
	}
	return &cb, true, nil
}

// BlocksFrom implements [Storage].
func (m *MemStorage) BlocksFrom(fromRound uint64, limit int) ([]CommittedBlock, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	i, _ := slices.BinarySearch(m.rounds, fromRound)
	var out []CommittedBlock
	for ; i < len(m.byRound) && len(out) < limit; i++ {
		out = append(out, m.blocks[m.byRound[i]])
	}
	return out, nil
}

// segmentSize is the number of elements of a segment.
const segmentSize = 4096

// segments is an append-only list kept in fixed-size segments, so that it
// grows without copying what it holds.
type segments[T any] struct {
	segs [][]T
	n    uint64
}

func (s *segments[T]) len() uint64 { return s.n }

func (s *segments[T]) at(i uint64) T { return s.segs[i/segmentSize][i%segmentSize] }

func (s *segments[T]) append(v T) {
	if s.n%segmentSize == 0 {
		s.segs = append(s.segs, make([]T, 0, segmentSize))
	}
	last := &s.segs[len(s.segs)-1]
	*last = append(*last, v)
	s.n++
}
