package store

import (
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/ledger"
)

// SafetyData is what consensus must remember across restarts to never vote
// twice in a round or against its lock. It is saved before a vote is sent.
type SafetyData struct {
	_ struct{} `cbor:",toarray"`
	// Epoch is the epoch the other fields belong to.
	Epoch uint64
	// LastVotedRound is the highest round voted in.
	LastVotedRound uint64
	// PreferredRound is the round of the highest 2-chain head (the lock).
	PreferredRound uint64
	// HighestTimeoutRound is the highest round a timeout was signed for.
	HighestTimeoutRound uint64
	// LastVote is the last vote sent, resent as is when asked again for the
	// same round; nil if none.
	LastVote *chain.Vote
}

// SaveTree stores blocks and quorum certificates in one atomic transaction.
// A QC is stored under the id of the block it certifies, replacing any QC
// stored for that block; a QC that commits a block is also indexed under the
// committed block's id. Every QC must certify a block of blocks or an
// already stored one, otherwise nothing is written and the error wraps
// [ErrInvalid]. Safe for concurrent use.
func (s *Store) SaveTree(blocks []*chain.Block, qcs []chain.QuorumCert) error {
	if len(blocks) == 0 && len(qcs) == 0 {
		return nil
	}
	for i, b := range blocks {
		if b == nil {
			return fmt.Errorf("%w: save tree: block %d is nil", ErrInvalid, i)
		}
	}
	return s.update(func(tx *bolt.Tx) error { return saveTree(tx, blocks, qcs) })
}

func saveTree(tx *bolt.Tx, blocks []*chain.Block, qcs []chain.QuorumCert) error {
	inBatch := make(map[chain.Hash]bool, len(blocks))
	for _, b := range blocks {
		if err := putValue(tx, bucketBlocks, b.ID[:], b); err != nil {
			return err
		}
		inBatch[b.ID] = true
	}
	stored := tx.Bucket(bucketBlocks)
	for i := range qcs {
		qc := &qcs[i]
		id := qc.CertifiedBlock().ID
		if !inBatch[id] && stored.Get(id[:]) == nil {
			return fmt.Errorf("%w: save tree: QC of round %d certifies block %s, which is neither stored nor saved with it",
				ErrInvalid, qc.Round(), id.Short())
		}
		if err := putValue(tx, bucketQCs, id[:], qc); err != nil {
			return err
		}
		if qc.CommitsBlock() {
			committed := qc.CommitInfo().ID
			if err := putValue(tx, bucketCommits, committed[:], id); err != nil {
				return err
			}
		}
	}
	return nil
}

// PruneTree deletes, in one atomic transaction, the blocks of ids, the QCs
// certifying them and the commit index entries of and to them. Ids that are
// not stored are ignored. Pruning the block the ledger committed last (the
// recovery root) is refused with [ErrInvalid] and deletes nothing. Safe for
// concurrent use.
func (s *Store) PruneTree(ids []chain.Hash) error {
	if len(ids) == 0 {
		return nil
	}
	return s.update(func(tx *bolt.Tx) error { return s.prune(tx, ids) })
}

// CommitTree writes in one atomic transaction what SaveTree(blocks, qcs),
// then Commit(b), then PruneTree(prune) would each write: so a block store
// persists a batch of blocks and the commit they bring, and forgets the
// blocks the commit archived, with one durable write. The QCs may certify
// blocks b archives; prune must not hold the block b commits. If any part
// fails, nothing is written. Safe for concurrent use.
func (s *Store) CommitTree(b *ledger.Batch, blocks []*chain.Block, qcs []chain.QuorumCert, prune []chain.Hash) error {
	for i, blk := range blocks {
		if blk == nil {
			return fmt.Errorf("%w: save tree: block %d is nil", ErrInvalid, i)
		}
	}
	var run *nodeRun
	err := s.update(func(tx *bolt.Tx) error {
		if err := saveTree(tx, blocks, qcs); err != nil {
			return err
		}
		err := commit(tx, b, &s.scratch)
		run, s.scratch.run = s.scratch.run, nil
		if err != nil {
			return err
		}
		return s.prune(tx, prune)
	})
	if err == nil {
		s.indexed(b)
		s.published(run)
	}
	return err
}

// prune is PruneTree within tx.
func (s *Store) prune(tx *bolt.Tx, ids []chain.Hash) error {
	c, err := readCommitted(tx)
	if err != nil {
		return err
	}
	root := s.genesisID
	if c.LedgerInfo != nil {
		root = c.LedgerInfo.LedgerInfo.CommitInfo.ID
	}
	if slices.Contains(ids, root) {
		return fmt.Errorf("%w: prune: block %s is the ledger's committed block", ErrInvalid, root.Short())
	}
	blocks, qcs, commits := tx.Bucket(bucketBlocks), tx.Bucket(bucketQCs), tx.Bucket(bucketCommits)
	for _, id := range ids {
		if raw := qcs.Get(id[:]); raw != nil {
			var qc chain.QuorumCert
			if err := decodeValue(bucketQCs, id[:], raw, maxQCSize, &qc); err != nil {
				return err
			}
			if qc.CommitsBlock() {
				// Drop the index entry pointing at this QC, if it still does.
				c := qc.CommitInfo().ID
				var to chain.Hash
				if raw := commits.Get(c[:]); raw != nil {
					if err := decodeValue(bucketCommits, c[:], raw, maxHashSize, &to); err != nil {
						return err
					}
					if to == id {
						if err := commits.Delete(c[:]); err != nil {
							return fmt.Errorf("store: prune: %w", err)
						}
					}
				}
			}
		}
		for _, b := range []*bolt.Bucket{blocks, qcs, commits} {
			if err := b.Delete(id[:]); err != nil {
				return fmt.Errorf("store: prune: %w", err)
			}
		}
	}
	return nil
}

// SaveSafetyData durably replaces the safety data in one atomic
// transaction. Safe for concurrent use.
func (s *Store) SaveSafetyData(sd SafetyData) error {
	return s.update(func(tx *bolt.Tx) error {
		return putValue(tx, bucketSafety, keySafety, &sd)
	})
}

// SafetyData returns the last saved safety data; the zero SafetyData if none
// was ever saved. Safe for concurrent use.
func (s *Store) SafetyData() (SafetyData, error) {
	var sd SafetyData
	err := s.view(func(tx *bolt.Tx) error { return readSafety(tx, &sd) })
	return sd, err
}

func readSafety(tx *bolt.Tx, sd *SafetyData) error {
	raw := tx.Bucket(bucketSafety).Get(keySafety)
	if raw == nil {
		return nil
	}
	return decodeValue(bucketSafety, keySafety, raw, maxSafetySize, sd)
}
