package store

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/chain/statetree"
)

// A restored snapshot's tree is too large for one node run, so its version
// keeps one run per chunk, each in a nested bucket of the version's bucket
// (instead of the single run under runKey):
//
//	tree_nodes  version -> first key hash of the chunk (32 bytes) -> node run
//	                    -> 0xff × 33 (the last record)             -> node run
//
// A restorer emits a node when the first leaf to its right arrives, so
// the node at (depth, path) whose subtree ends at key hash E (the path
// followed by ones) is in the record of the chunk holding the first leaf
// after E: the chunk with the largest first key hash at most E, or the
// next one (whose first leaf may be that leaf); the nodes with no leaf
// after them (the rightmost path, the root) are in the last record.
//
// The restore's position is the snapshot record of the ledger bucket,
// written with each chunk, so that a killed restore resumes after the last
// chunk stored. Finishing writes the last record, the committed record of
// the snapshot's version and a pruned record there (the frontier, no
// history below), and deletes the snapshot record, in one transaction.

var (
	keySnapshot  = []byte("snapshot")
	lastChunkKey = bytes.Repeat([]byte{0xff}, chain.HashSize+1)
)

// maxSnapshotSize bounds the snapshot record: a ledger info, a frontier
// and a restorer (a leaf and at most 256 children).
const maxSnapshotSize = maxCommittedSize + 2*chain.MaxTxSize

var _ ledger.SnapshotStorage = (*Store)(nil)

// Snapshot implements [ledger.SnapshotStorage].
func (s *Store) Snapshot() (*ledger.SnapshotProgress, error) {
	var p *ledger.SnapshotProgress
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		p, err = readSnapshotProgress(tx)
		return err
	})
	return p, err
}

func readSnapshotProgress(tx *bolt.Tx) (*ledger.SnapshotProgress, error) {
	raw := tx.Bucket(bucketLedger).Get(keySnapshot)
	if raw == nil {
		return nil, nil
	}
	p := &ledger.SnapshotProgress{}
	if err := decodeValue(bucketLedger, keySnapshot, raw, maxSnapshotSize, p); err != nil {
		return nil, err
	}
	if p.LedgerInfo == nil {
		return nil, fmt.Errorf("%w: snapshot record without a ledger info", ErrCorrupt)
	}
	return p, nil
}

// checkEmptyLedger refuses a snapshot write to a ledger that holds
// transactions or a ledger info.
func checkEmptyLedger(tx *bolt.Tx) error {
	c, err := readCommitted(tx)
	if err != nil {
		return err
	}
	if c.Version != 0 || c.LedgerInfo != nil {
		return fmt.Errorf("%w: snapshot restore into a ledger at version %d", ErrInvalid, c.Version)
	}
	return nil
}

// checkSnapshotNodes checks that p names a snapshot and that nodes are of
// its version.
func checkSnapshotNodes(p *ledger.SnapshotProgress, nodes []statetree.NodeEntry) (uint64, error) {
	if p == nil || p.LedgerInfo == nil {
		return 0, fmt.Errorf("%w: snapshot progress without a ledger info", ErrInvalid)
	}
	v := p.LedgerInfo.LedgerInfo.CommitInfo.Version
	if v == 0 || len(p.Frontier) != frontierSize(v) {
		return 0, fmt.Errorf("%w: snapshot of version %d with a frontier of %d hashes", ErrInvalid, v, len(p.Frontier))
	}
	for _, e := range nodes {
		if e.Key.Version != v {
			return 0, fmt.Errorf("%w: snapshot of version %d writes a node of version %d", ErrInvalid, v, e.Key.Version)
		}
	}
	return v, nil
}

// PutSnapshot implements [ledger.SnapshotStorage].
func (s *Store) PutSnapshot(p *ledger.SnapshotProgress, first chain.Hash, nodes []statetree.NodeEntry) error {
	v, err := checkSnapshotNodes(p, nodes)
	if err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		if err := checkEmptyLedger(tx); err != nil {
			return err
		}
		if err := discardOtherSnapshot(tx, p); err != nil {
			return err
		}
		tn := tx.Bucket(bucketTreeNodes)
		if err := putChunkRun(tn, v, first[:], nodes); err != nil {
			return err
		}
		return putValue(tx, bucketLedger, keySnapshot, p)
	})
}

// discardOtherSnapshot deletes the records of the restore in progress if
// it is not p's: of another ledger info, even at p's version (an idle
// chain commits empty blocks at one version), whose records would collide
// with p's.
func discardOtherSnapshot(tx *bolt.Tx, p *ledger.SnapshotProgress) error {
	old, err := readSnapshotProgress(tx)
	if err != nil || old == nil || old.LedgerInfo.LedgerInfo.CommitInfo == p.LedgerInfo.LedgerInfo.CommitInfo {
		return err
	}
	tn := tx.Bucket(bucketTreeNodes)
	if ov := old.LedgerInfo.LedgerInfo.CommitInfo.Version; tn.Bucket(versionKey(ov)) != nil {
		if err := tn.DeleteBucket(versionKey(ov)); err != nil {
			return fmt.Errorf("store: discard the snapshot of version %d: %w", ov, err)
		}
	}
	return nil
}

// putChunkRun stores nodes as the record key of the snapshot of version.
func putChunkRun(tn *bolt.Bucket, version uint64, key []byte, nodes []statetree.NodeEntry) error {
	if len(nodes) == 0 {
		return nil
	}
	vb, err := tn.CreateBucketIfNotExists(versionKey(version))
	if err == nil {
		vb.FillPercent = appendFillPercent
		err = putRun(vb, key, encodeRun(nodes))
	}
	if err != nil {
		return fmt.Errorf("store: put snapshot nodes of version %d: %w", version, err)
	}
	return nil
}

// FinishSnapshot implements [ledger.SnapshotStorage].
func (s *Store) FinishSnapshot(p *ledger.SnapshotProgress, nodes []statetree.NodeEntry) error {
	v, err := checkSnapshotNodes(p, nodes)
	if err != nil {
		return err
	}
	err = s.update(func(tx *bolt.Tx) error {
		if err := checkEmptyLedger(tx); err != nil {
			return err
		}
		if err := discardOtherSnapshot(tx, p); err != nil {
			return err
		}
		tn := tx.Bucket(bucketTreeNodes)
		if err := putChunkRun(tn, v, lastChunkKey, nodes); err != nil {
			return err
		}
		if raw, err := lookupNode(tn, statetree.NodeKey{Version: v}); err != nil || raw == nil {
			return fmt.Errorf("%w: snapshot of version %d has no root node (%v)", ErrInvalid, v, err)
		}
		rec := committedRecord{Version: v, Frontier: p.Frontier, LedgerInfo: p.LedgerInfo, TreeVersion: v}
		if err := putValue(tx, bucketLedger, keyCommitted, &rec); err != nil {
			return err
		}
		// Straddle stays zero: the level-1 node over versions v-1 and v
		// (v odd) needs the transaction of v, and is hashed from it and
		// the frontier's last leaf (see nodeAt).
		if err := putValue(tx, bucketLedger, keyPruned, &prunedRecord{Version: v, Frontier: p.Frontier}); err != nil {
			return err
		}
		if err := tx.Bucket(bucketLedger).Delete(keySnapshot); err != nil {
			return fmt.Errorf("store: delete the snapshot record: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// The index's tail starts at the snapshot's version, as a reopen's
	// would (loadIndex): the next commit's transactions are of v on.
	s.idx.prunedTo(v)
	return nil
}

// lookupNode returns the encoded node of k in tn (the tree_nodes bucket),
// nil if there is none. The bytes are valid only in the transaction.
func lookupNode(tn *bolt.Bucket, k statetree.NodeKey) ([]byte, error) {
	vb := tn.Bucket(versionKey(k.Version))
	if vb == nil {
		return nil, nil
	}
	if run := vb.Get(runKey); run != nil {
		return findNode(run, k)
	}
	for _, key := range chunkCandidates(vb, subtreeEnd(k)) {
		sub := vb.Bucket(key)
		if sub == nil {
			return nil, fmt.Errorf("%w: snapshot record %x of version %d is not a run", ErrCorrupt, key, k.Version)
		}
		raw, err := findNode(sub.Get(runKey), k)
		if err != nil || raw != nil {
			return raw, err
		}
	}
	return nil, nil
}

// subtreeEnd returns the last key hash of the subtree at k's position:
// its path followed by ones.
func subtreeEnd(k statetree.NodeKey) chain.Hash {
	e := k.Path
	for i := int(k.Depth); i < 8*chain.HashSize; i++ {
		e[i/8] |= 0x80 >> (i % 8)
	}
	return e
}

// chunkCandidates returns the keys of the records of a snapshot version vb
// that may hold the node whose subtree ends at e: the record with the
// largest first key hash at most e, and the one after it.
func chunkCandidates(vb *bolt.Bucket, e chain.Hash) [][]byte {
	c := vb.Cursor()
	k, _ := c.Seek(e[:])
	switch {
	case k == nil:
		last, _ := c.Last()
		return nonNil(last)
	case bytes.Equal(k, e[:]):
		next, _ := c.Next()
		return nonNil(bytes.Clone(k), next)
	default:
		after := bytes.Clone(k)
		floor, _ := c.Prev()
		return nonNil(floor, after)
	}
}

func nonNil(keys ...[]byte) [][]byte {
	out := keys[:0]
	for _, k := range keys {
		if k != nil {
			out = append(out, k)
		}
	}
	return out
}

// txNodes reads the state tree's nodes within one read transaction.
type txNodes struct{ tn *bolt.Bucket }

// Node implements [statetree.NodeReader].
func (r txNodes) Node(k statetree.NodeKey) (*statetree.Node, error) {
	raw, err := lookupNode(r.tn, k)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, fmt.Errorf("%w: %d/%d", statetree.ErrNodeNotFound, k.Version, k.Depth)
	}
	n, err := statetree.ParseNode(bytes.Clone(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: tree node %d/%d: %w", ErrCorrupt, k.Version, k.Depth, err)
	}
	return n, nil
}

// treeValue returns the value of key in the state tree of the committed
// tree version: how a store restored from a snapshot (whose keys no state
// run names) reads the keys not written since.
func treeValue(tx *bolt.Tx, key []byte) ([]byte, bool, error) {
	c, err := readCommitted(tx)
	if err != nil || c.TreeVersion == 0 {
		return nil, false, err
	}
	leaf, _, err := statetree.New(txNodes{tx.Bucket(bucketTreeNodes)}).Get(c.TreeVersion, statetree.KeyHash(key))
	if err != nil {
		return nil, false, fmt.Errorf("store: state key %x in the tree of version %d: %w", key, c.TreeVersion, err)
	}
	if leaf == nil {
		return nil, false, nil
	}
	return bytes.Clone(leaf.Value), true, nil
}
