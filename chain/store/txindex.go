package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/ledger"
)

// The index of transactions by hash maps the accumulator leaf hash of each
// committed transaction (chain.TxLeafHash) to its version, for GET
// /tx/{hash}. It is kept as the state is (see staterun.go): each commit
// writes its transactions' entries hash | version (8 bytes big-endian),
// sorted by hash, as one run of the tx_hashes bucket under the commit's end
// version, merged with the newest runs that are not larger. A hash
// committed more than once (the same bytes sent again) maps to its latest
// version. The hashes come from the batch's accumulator leaves, which the
// ledger computed anyway: a commit adds a sort and a run of 40 bytes a
// transaction, no hashing.

// txHashEntry is the size of an entry of the index.
const txHashEntry = chain.HashSize + 8

// leafHash is a transaction's leaf hash with its version, for sorting.
type leafHash struct {
	prefix  uint64 // the hash's first 8 bytes, big-endian
	hash    *chain.Hash
	version uint64
}

// batchLeaves returns the leaf hashes of the transactions of versions
// [start, end), whose nodes, checked by checkNodes, are nodes: sorted by
// hash, one per hash, the latest version of a hash that repeats.
func batchLeaves(nodes []ledger.Node, start, end uint64) []leafHash {
	out := make([]leafHash, 0, end-start)
	i := 0
	for v := start; v < end; v++ {
		h := &nodes[i].Hash // each version's leaf comes first among the nodes its append completes
		out = append(out, leafHash{prefix: binary.BigEndian.Uint64(h[:8]), hash: h, version: v})
		i += bits.TrailingZeros64(v+1) + 1
	}
	slices.SortFunc(out, func(a, b leafHash) int {
		switch {
		case a.prefix < b.prefix:
			return -1
		case a.prefix > b.prefix:
			return 1
		}
		if c := bytes.Compare(a.hash[:], b.hash[:]); c != 0 {
			return c
		}
		switch {
		case a.version < b.version:
			return -1
		case a.version > b.version:
			return 1
		}
		return 0
	})
	// Keep the last (latest) entry of each hash.
	j := 0
	for k := range out {
		if k+1 < len(out) && *out[k].hash == *out[k+1].hash {
			continue
		}
		out[j] = out[k]
		j++
	}
	return out[:j]
}

// putTxHashes indexes the transactions of versions [start, end), whose
// accumulator nodes are nodes (checked by checkNodes).
func putTxHashes(tx *bolt.Tx, sc *scratch, nodes []ledger.Node, start, end uint64) error {
	ls := batchLeaves(nodes, start, end)
	return putVersionRun(tx, sc, bucketTxHashes, txHashEntry, end, len(ls),
		func(i int) []byte { return ls[i].hash[:] }, func(i int) uint64 { return ls[i].version })
}

// txVersion returns the version of the committed transaction whose leaf
// hash is h: the newest entry of h, looked up in the runs newest first.
func txVersion(tx *bolt.Tx, h chain.Hash) (uint64, bool, error) {
	c := newRunCursor(tx.Bucket(bucketTxHashes))
	for k, v := c.last(); k != nil; k, v = c.prev() {
		r, err := decodeRun(bucketTxHashes, k, v, txHashEntry)
		if err != nil {
			return 0, false, err
		}
		version, ok, err := lookup(r, h[:])
		if err != nil {
			return 0, false, err
		}
		if ok {
			return version, true, nil
		}
	}
	return 0, false, nil
}

// TxVersion returns the version of the committed transaction whose
// accumulator leaf hash is h (its latest version if it was committed more
// than once), and whether there is one. Safe for concurrent use.
func (s *Store) TxVersion(h chain.Hash) (uint64, bool, error) {
	var version uint64
	var ok bool
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		if version, ok, err = txVersion(tx, h); err != nil || !ok {
			return err
		}
		t, err := txAt(tx, version)
		if err != nil {
			return fmt.Errorf("store: transaction %s is indexed at version %d: %w", h.Short(), version, err)
		}
		if chain.TxLeafHash(t) != h {
			return fmt.Errorf("%w: transaction %s is indexed at version %d, which holds another one", ErrCorrupt, h.Short(), version)
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return version, ok, nil
}

// indexTxHashes indexes the committed transactions of a file of schema 2,
// which had no index of transactions by hash, in runs of maxMergedRun.
func indexTxHashes(tx *bolt.Tx, sc *scratch) error {
	if _, err := tx.CreateBucketIfNotExists(bucketTxHashes); err != nil {
		return fmt.Errorf("store: create bucket %q: %w", bucketTxHashes, err)
	}
	c, err := readCommitted(tx)
	if err != nil {
		return err
	}
	const step = 4096 // transactions read at a time
	for start := uint64(0); start < c.Version; {
		n := min(c.Version-start, maxMergedRun)
		// The nodes batchLeaves reads: each leaf, then (zero) placeholders
		// for the nodes its append completes.
		nodes := make([]ledger.Node, 0, 2*n+1)
		for at := start; at < start+n; at += step {
			txs, err := readTxs(tx, at, min(step, start+n-at))
			if err != nil {
				return err
			}
			for i, t := range txs {
				nodes = append(nodes, ledger.Node{Hash: chain.TxLeafHash(t)})
				nodes = append(nodes, make([]ledger.Node, bits.TrailingZeros64(at+uint64(i)+1))...)
			}
		}
		if err := putTxHashes(tx, sc, nodes, start, start+n); err != nil {
			return err
		}
		start += n
	}
	return nil
}
