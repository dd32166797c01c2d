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
	_          struct{} `cbor:",toarray"`
	Version    uint64
	Frontier   []chain.Hash
	LedgerInfo *chain.LedgerInfoWithSignatures
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
	if rec.LedgerInfo != nil {
		if v := rec.LedgerInfo.LedgerInfo.CommitInfo.Version; v > rec.Version {
			return ledger.Committed{}, fmt.Errorf("%w: ledger at version %d has a ledger info committing version %d",
				ErrCorrupt, rec.Version, v)
		}
	}
	return ledger.Committed{Version: rec.Version, Frontier: rec.Frontier, LedgerInfo: rec.LedgerInfo}, nil
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
		out = make([][]byte, 0, n)
		cur := tx.Bucket(bucketTxs).Cursor()
		k, v := cur.Seek(versionKey(start))
		for i := range n {
			want := start + i
			if k == nil || len(k) != 8 || binary.BigEndian.Uint64(k) != want {
				return fmt.Errorf("%w: transaction %d of a ledger at version %d is missing", ErrCorrupt, want, c.Version)
			}
			var t []byte
			if err := decodeValue(bucketTxs, k, v, maxTxValueSize, &t); err != nil {
				return err
			}
			out = append(out, t)
			k, v = cur.Next()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// nodeKey is the key of an accumulator node: its level byte, then its index
// 8 bytes big-endian.
func nodeKey(id compact.NodeID) []byte {
	k := make([]byte, 1, 9)
	k[0] = byte(id.Level)
	return binary.BigEndian.AppendUint64(k, id.Index)
}

// Nodes returns the hashes of committed accumulator nodes, in the order of
// ids; the error wraps [ErrNotAvailable] if one is not stored. Safe for
// concurrent use.
func (s *Store) Nodes(ids []compact.NodeID) ([]chain.Hash, error) {
	out := make([]chain.Hash, len(ids))
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketNodes)
		for i, id := range ids {
			if id.Level >= 64 {
				return fmt.Errorf("%w: accumulator node (level %d, index %d)", ErrNotAvailable, id.Level, id.Index)
			}
			k := nodeKey(id)
			raw := b.Get(k)
			if raw == nil {
				return fmt.Errorf("%w: accumulator node (level %d, index %d)", ErrNotAvailable, id.Level, id.Index)
			}
			if err := decodeValue(bucketNodes, k, raw, maxHashSize, &out[i]); err != nil {
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
		if len(key) == 0 {
			return nil
		}
		raw := tx.Bucket(bucketState).Get(key)
		if raw == nil {
			return nil
		}
		ok = true
		return decodeValue(bucketState, key, raw, maxTxValueSize, &val)
	})
	if err != nil {
		return nil, false, err
	}
	if ok && val == nil {
		val = []byte{}
	}
	return val, ok, nil
}

// Commit durably applies b in one atomic transaction: its transactions under
// their versions, its accumulator nodes, its state writes, and the new
// version, frontier and (if not nil) ledger info. A batch that does not start
// at the committed version fails with a [*VersionError]; a malformed batch
// (frontier of the wrong size, empty or oversized key, ledger info beyond the
// new version) with [ErrInvalid]. Either way nothing is written. Safe for
// concurrent use; the ledger is its only caller.
func (s *Store) Commit(b *ledger.Batch) error {
	if b == nil {
		return fmt.Errorf("%w: nil batch", ErrInvalid)
	}
	end := b.StartVersion + uint64(len(b.Txs))
	if end < b.StartVersion {
		return fmt.Errorf("%w: batch overflows the version space", ErrInvalid)
	}
	for _, w := range b.Writes {
		if len(w.Key) == 0 || len(w.Key) > bolt.MaxKeySize {
			return fmt.Errorf("%w: state write with a key of %d bytes", ErrInvalid, len(w.Key))
		}
	}
	for _, n := range b.Nodes {
		if n.ID.Level >= 64 {
			return fmt.Errorf("%w: accumulator node of level %d", ErrInvalid, n.ID.Level)
		}
	}
	return s.update(func(tx *bolt.Tx) error {
		cur, err := readCommitted(tx)
		if err != nil {
			return err
		}
		if b.StartVersion != cur.Version {
			return &VersionError{Committed: cur.Version, Start: b.StartVersion}
		}
		if want := frontierSize(end); len(b.Frontier) != want {
			return fmt.Errorf("%w: batch ending at version %d has a frontier of %d hashes, want %d",
				ErrInvalid, end, len(b.Frontier), want)
		}
		if b.LedgerInfo != nil && b.LedgerInfo.LedgerInfo.CommitInfo.Version > end {
			return fmt.Errorf("%w: batch ending at version %d carries a ledger info committing version %d",
				ErrInvalid, end, b.LedgerInfo.LedgerInfo.CommitInfo.Version)
		}
		txs := tx.Bucket(bucketTxs)
		// Versions only grow: fill pages fully rather than leave room for
		// inserts that never come.
		txs.FillPercent = appendFillPercent
		tx.Bucket(bucketNodes).FillPercent = appendFillPercent
		for i, t := range b.Txs {
			enc, err := chain.Encode(t)
			if err != nil {
				return fmt.Errorf("store: %w", err)
			}
			if err := txs.Put(versionKey(b.StartVersion+uint64(i)), enc); err != nil {
				return fmt.Errorf("store: put transaction %d: %w", b.StartVersion+uint64(i), err)
			}
		}
		for _, n := range b.Nodes {
			if err := putValue(tx, bucketNodes, nodeKey(n.ID), n.Hash); err != nil {
				return err
			}
		}
		for _, w := range b.Writes {
			if err := putValue(tx, bucketState, w.Key, w.Value); err != nil {
				return err
			}
		}
		rec := committedRecord{Version: end, Frontier: b.Frontier, LedgerInfo: cur.LedgerInfo}
		if b.LedgerInfo != nil {
			rec.LedgerInfo = b.LedgerInfo
		}
		return putValue(tx, bucketLedger, keyCommitted, &rec)
	})
}
