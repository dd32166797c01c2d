package store

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/transparency-dev/merkle/compact"
	bolt "go.etcd.io/bbolt"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/ledger"
)

// appendFillPercent is the page fill of the append-only buckets txs and
// nodes (bbolt's default is 0.5, for random inserts).
const appendFillPercent = 0.9

// committedRecord is the stored summary of the ledger.
type committedRecord struct {
	_           struct{} `cbor:",toarray"`
	Version     uint64
	Frontier    []chain.Hash
	LedgerInfo  *chain.LedgerInfoWithSignatures
	TreeVersion uint64
}

// frontierSize is the number of hashes in the compact range [0, version).
func frontierSize(version uint64) int { return bits.OnesCount64(version) }

// Committed returns the summary of the durable ledger; the zero Committed
// before the first Commit. Safe for concurrent use.
func (s *Store) Committed() (ledger.Committed, error) {
	var c ledger.Committed
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		c, err = readCommitted(tx)
		return err
	})
	return c, err
}

func readCommitted(tx *bolt.Tx) (ledger.Committed, error) {
	raw := tx.Bucket(bucketLedger).Get(keyCommitted)
	if raw == nil {
		return ledger.Committed{}, nil
	}
	var rec committedRecord
	if err := decodeValue(bucketLedger, keyCommitted, raw, maxCommittedSize, &rec); err != nil {
		return ledger.Committed{}, err
	}
	if want := frontierSize(rec.Version); len(rec.Frontier) != want {
		return ledger.Committed{}, fmt.Errorf("%w: ledger at version %d has a frontier of %d hashes, want %d",
			ErrCorrupt, rec.Version, len(rec.Frontier), want)
	}
	if rec.TreeVersion > rec.Version {
		return ledger.Committed{}, fmt.Errorf("%w: ledger at version %d has a state tree at version %d", ErrCorrupt, rec.Version, rec.TreeVersion)
	}
	if rec.LedgerInfo != nil {
		if v := rec.LedgerInfo.LedgerInfo.CommitInfo.Version; v > rec.Version {
			return ledger.Committed{}, fmt.Errorf("%w: ledger at version %d has a ledger info committing version %d",
				ErrCorrupt, rec.Version, v)
		}
	}
	return ledger.Committed{Version: rec.Version, Frontier: rec.Frontier, LedgerInfo: rec.LedgerInfo, TreeVersion: rec.TreeVersion}, nil
}

// Txs returns the committed transactions of versions [start, start+n); the
// error wraps [ErrNotAvailable] if some are not committed. Safe for
// concurrent use.
func (s *Store) Txs(start, n uint64) ([][]byte, error) {
	var out [][]byte
	err := s.view(func(tx *bolt.Tx) error {
		c, err := readCommitted(tx)
		if err != nil {
			return err
		}
		if start > c.Version || n > c.Version-start {
			return fmt.Errorf("%w: transactions [%d, %d+%d) asked, ledger is at version %d",
				ErrNotAvailable, start, start, n, c.Version)
		}
		pruned, err := readPruned(tx)
		if err != nil {
			return err
		}
		if n > 0 && start < pruned.Version {
			return errPruned("transaction", start, pruned.Version)
		}
		out, err = readTxs(tx, start, n)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Nodes returns the hashes of committed accumulator nodes, in the order of
// ids; the error wraps [ErrNotAvailable] if one is not stored. Safe for
// concurrent use.
func (s *Store) Nodes(ids []compact.NodeID) ([]chain.Hash, error) {
	out := make([]chain.Hash, len(ids))
	err := s.view(func(tx *bolt.Tx) error {
		c, err := readCommitted(tx)
		if err != nil {
			return err
		}
		pruned, err := readPruned(tx)
		if err != nil {
			return err
		}
		cur := newRunCursor(tx.Bucket(bucketNodes))
		for i, id := range ids {
			if out[i], err = nodeAt(tx, cur, id, c.Version, pruned); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Get returns the committed value of key in the state, and whether it is
// set. Safe for concurrent use.
func (s *Store) Get(key []byte) ([]byte, bool, error) {
	var val []byte
	var ok bool
	err := s.view(func(tx *bolt.Tx) error {
		if len(key) == 0 || len(key) > chain.MaxKeySize {
			return nil
		}
		var err error
		val, ok, err = getState(tx, key)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return val, ok, nil
}

// Commit durably applies b in one atomic transaction: its transactions, its
// accumulator nodes, its state writes, its archived blocks, and the new
// version, frontier and (if not nil) ledger info. A batch that does not
// start at the committed version fails with a [*VersionError]; a malformed
// batch (nodes other than those its transactions complete, frontier of the
// wrong size, state writes out of key order or naming a transaction that
// does not write their key, ledger info beyond the new version) with
// [ErrInvalid]. Either way nothing is written. Safe for concurrent use; the
// ledger is its only caller.
func (s *Store) Commit(b *ledger.Batch) error {
	var run *nodeRun
	err := s.update(func(tx *bolt.Tx) error {
		err := commit(tx, b, &s.scratch)
		run, s.scratch.run = s.scratch.run, nil
		return err
	})
	if err == nil {
		s.indexed(b)
		s.published(run)
	}
	return err
}

// published makes run, written by a committed transaction, the run read
// from memory; nil changes nothing.
func (s *Store) published(run *nodeRun) {
	if run != nil {
		s.lastRun.Store(run)
	}
}

// commit is Commit within tx, encoding runs in buffers of sc.
func commit(tx *bolt.Tx, b *ledger.Batch, sc *scratch) error {
	if b == nil {
		return fmt.Errorf("%w: nil batch", ErrInvalid)
	}
	end := b.StartVersion + uint64(len(b.Txs))
	if end < b.StartVersion || end > 1<<62 {
		return fmt.Errorf("%w: batch overflows the version space", ErrInvalid)
	}
	cur, err := readCommitted(tx)
	if err != nil {
		return err
	}
	if b.StartVersion != cur.Version {
		return &VersionError{Committed: cur.Version, Start: b.StartVersion}
	}
	if err := checkNodes(b.Nodes, b.StartVersion, end); err != nil {
		return err
	}
	if err := checkWrites(b); err != nil {
		return err
	}
	if err := checkTree(b, cur.TreeVersion, end); err != nil {
		return err
	}
	if want := frontierSize(end); len(b.Frontier) != want {
		return fmt.Errorf("%w: batch ending at version %d has a frontier of %d hashes, want %d",
			ErrInvalid, end, len(b.Frontier), want)
	}
	if b.LedgerInfo != nil && b.LedgerInfo.LedgerInfo.CommitInfo.Version > end {
		return fmt.Errorf("%w: batch ending at version %d carries a ledger info committing version %d",
			ErrInvalid, end, b.LedgerInfo.LedgerInfo.CommitInfo.Version)
	}
	if err := putRuns(tx, sc, b.StartVersion, b.Txs, b.Nodes); err != nil {
		return err
	}
	if err := putState(tx, sc, b.Writes, end); err != nil {
		return err
	}
	run, err := putTree(tx, b.Tree)
	if err != nil {
		return err
	}
	if run != nil {
		sc.run = run
	}
	if err := archive(tx, b.Blocks, end); err != nil {
		return err
	}
	rec := committedRecord{Version: end, Frontier: b.Frontier, LedgerInfo: cur.LedgerInfo, TreeVersion: cur.TreeVersion}
	if n := len(b.Tree); n > 0 {
		rec.TreeVersion = b.Tree[n-1].Version
	}
	if b.LedgerInfo != nil {
		rec.LedgerInfo = b.LedgerInfo
	}
	return putValue(tx, bucketLedger, keyCommitted, &rec)
}

// archivedBlock is a committed block as the archive bucket keeps it: without
// its payload, which is the TxCount transactions that end at Info.Version in
// the txs bucket.
type archivedBlock struct {
	_       struct{} `cbor:",toarray"`
	Header  *chain.Block
	Info    chain.BlockInfo
	TxCount uint64
}

// archive stores committed blocks under their round, without their
// payload, and indexes their ids. Rounds only grow, so the archive's pages
// are appended to, never rewritten: a long catch-up does not drag the whole
// archive through memory; the id index holds 8 bytes per block.
func archive(tx *bolt.Tx, blocks []ledger.CommittedBlock, end uint64) error {
	arch, ids := tx.Bucket(bucketArchive), tx.Bucket(bucketArchiveIDs)
	arch.FillPercent = appendFillPercent
	for i, cb := range blocks {
		if cb.Block == nil || cb.Block.IsGenesis() || cb.Info.ID != cb.Block.ID || cb.Info.Version > end ||
			uint64(len(cb.Block.Payload())) > cb.Info.Version {
			return fmt.Errorf("%w: archived block %d does not match its info or the batch", ErrInvalid, i)
		}
		header := *cb.Block
		header.Data.Payload = nil
		rec := archivedBlock{Header: &header, Info: cb.Info, TxCount: uint64(len(cb.Block.Payload()))}
		round := versionKey(cb.Block.Round())
		if err := putValue(tx, bucketArchive, round, &rec); err != nil {
			return err
		}
		id := cb.Block.ID
		if err := ids.Put(id[:], round); err != nil {
			return fmt.Errorf("store: index block %s: %w", id.Short(), err)
		}
	}
	return nil
}

// Block returns the archived committed block id with its payload restored
// from the transactions. Safe for concurrent use.
func (s *Store) Block(id chain.Hash) (*ledger.CommittedBlock, bool, error) {
	var out *ledger.CommittedBlock
	err := s.view(func(tx *bolt.Tx) error {
		round := tx.Bucket(bucketArchiveIDs).Get(id[:])
		if round == nil {
			return nil
		}
		cb, err := readArchived(tx, round, tx.Bucket(bucketArchive).Get(round))
		if err == nil && cb == nil {
			err = fmt.Errorf("%w: block %s is indexed at a round with no archived block", ErrCorrupt, id.Short())
		}
		if err == nil && cb.Block.ID != id {
			err = fmt.Errorf("%w: block %s is indexed at the round of block %s", ErrCorrupt, id.Short(), cb.Block.ID.Short())
		}
		out = cb
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return out, out != nil, nil
}

// BlocksFrom returns up to limit archived committed blocks of round
// fromRound or above, in round order. Safe for concurrent use.
func (s *Store) BlocksFrom(fromRound uint64, limit int) ([]ledger.CommittedBlock, error) {
	var out []ledger.CommittedBlock
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketArchive).Cursor()
		for k, v := c.Seek(versionKey(fromRound)); k != nil && len(out) < limit; k, v = c.Next() {
			cb, err := readArchived(tx, k, v)
			if err != nil {
				return err
			}
			out = append(out, *cb)
		}
		return nil
	})
	return out, err
}

// readArchived decodes the archive entry raw stored under key (a round) and
// restores its payload; nil if raw is nil.
func readArchived(tx *bolt.Tx, key, raw []byte) (*ledger.CommittedBlock, error) {
	if raw == nil {
		return nil, nil
	}
	var rec archivedBlock
	if err := decodeValue(bucketArchive, key, raw, chain.MaxEncodedBlockSize, &rec); err != nil {
		return nil, err
	}
	if rec.Header == nil || rec.TxCount > rec.Info.Version || len(key) != 8 || rec.Header.Round() != binary.BigEndian.Uint64(key) {
		return nil, fmt.Errorf("%w: archived block at %s is malformed", ErrCorrupt, keyString(key))
	}
	b := *rec.Header
	if rec.TxCount > 0 {
		txs, err := readTxs(tx, rec.Info.Version-rec.TxCount, rec.TxCount)
		if err != nil {
			return nil, fmt.Errorf("%w: payload of archived block %s: %w", ErrCorrupt, b.ID.Short(), err)
		}
		b.Data.Payload = txs
	}
	return &ledger.CommittedBlock{Block: &b, Info: rec.Info}, nil
}
