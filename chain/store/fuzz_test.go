package store

import (
	"bytes"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/transparency-dev/merkle/compact"
	bolt "go.etcd.io/bbolt"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/chain/ledger"
)

// FuzzRecover replaces one stored value with arbitrary bytes and runs every
// decoder of the store on the result, in a write transaction that is rolled
// back: nothing may panic, and every error must be ErrCorrupt.
func FuzzRecover(f *testing.F) {
	v := chaintest.NewValidators(51, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 2, TxSize: 16, Seed: 51})
	nodes := b.Extend(b.Genesis(), 5)
	st, err := Open(filepath.Join(f.TempDir(), "fuzz.db"), v.Genesis)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	for _, n := range nodes {
		if err := st.SaveTree([]*chain.Block{n.Block}, []chain.QuorumCert{n.QC}); err != nil {
			f.Fatal(err)
		}
	}
	acc := chain.NewAccumulator()
	batch := &ledger.Batch{LedgerInfo: nodes[3].QC.LedgerInfo()}
	for _, n := range nodes[:2] {
		for _, tx := range n.Block.Payload() {
			acc.AppendLeaf(chain.TxLeafHash(tx), func(id compact.NodeID, h chain.Hash) {
				batch.Nodes = append(batch.Nodes, ledger.Node{ID: id, Hash: h})
			})
			k, val, _ := chain.DecodeKV(tx)
			batch.Writes = append(batch.Writes, ledger.KV{Key: k, Value: val, Version: uint64(len(batch.Txs))})
			batch.Txs = append(batch.Txs, tx)
		}
	}
	slices.SortFunc(batch.Writes, func(x, y ledger.KV) int { return bytes.Compare(x.Key, y.Key) })
	batch.Frontier = acc.Frontier()
	if err := st.Commit(withTree(f, st, batch)); err != nil {
		f.Fatal(err)
	}
	if err := st.SaveSafetyData(SafetyData{Epoch: 1, LastVotedRound: 5}); err != nil {
		f.Fatal(err)
	}

	// A target names a value: key in bucket, or, with run set, the run
	// under key in bucket.
	type target struct {
		bucket, key []byte
		run         bool
	}
	leaf := func(tx *bolt.Tx, tg target) (*bolt.Bucket, []byte) {
		if tg.run {
			return tx.Bucket(tg.bucket).Bucket(tg.key), runKey
		}
		return tx.Bucket(tg.bucket), tg.key
	}
	targets := []target{
		{bucketBlocks, nodes[1].Block.ID[:], false},
		{bucketBlocks, nodes[2].Block.ID[:], false}, // the root
		{bucketQCs, nodes[2].Block.ID[:], false},
		{bucketCommits, nodes[2].Block.ID[:], false},
		{bucketLedger, keyCommitted, false},
		{bucketSafety, keySafety, false},
		{bucketTxs, versionKey(0), true},
		{bucketNodes, versionKey(0), true},
		{bucketState, versionKey(uint64(len(batch.Txs))), true},
	}
	for i, tg := range targets {
		err := st.db.View(func(tx *bolt.Tx) error {
			b, k := leaf(tx, tg)
			f.Add(uint8(i), append([]byte(nil), b.Get(k)...))
			return nil
		})
		if err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, value []byte) {
		tg := targets[int(which)%len(targets)]
		tx, err := st.db.Begin(true)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		b, k := leaf(tx, tg)
		if len(value) == 0 {
			err = b.Delete(k)
		} else {
			err = b.Put(k, value)
		}
		if err != nil {
			t.Fatal(err)
		}
		check := func(what string, err error) {
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s: %v, want ErrCorrupt", what, err)
			}
		}
		c, err := readCommitted(tx)
		check("committed", err)
		if err == nil {
			snap, err := readSnapshot(tx)
			check("snapshot", err)
			if err == nil {
				_, err = st.derive(c, snap)
				check("derive", err)
			}
		}
		var sd SafetyData
		check("safety", readSafety(tx, &sd))
		// The ledger's own decoders: runs of transactions, nodes and state.
		n := uint64(len(batch.Txs))
		_, err = readTxs(tx, 0, n)
		check("txs", err)
		_, err = readTxs(tx, n-1, 1)
		check("last tx", err)
		cur := newRunCursor(tx.Bucket(bucketNodes))
		for _, id := range []compact.NodeID{compact.NewNodeID(0, 0), compact.NewNodeID(2, 0), compact.NewNodeID(0, n-1)} {
			_, err := nodeAt(tx, cur, id, n, prunedRecord{})
			check("node", err)
		}
		for _, w := range batch.Writes {
			_, _, err := getState(tx, w.Key)
			check("state", err)
		}
	})
}
