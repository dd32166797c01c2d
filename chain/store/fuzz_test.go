package store

import (
	"errors"
	"path/filepath"
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
			batch.Writes = append(batch.Writes, ledger.KV{Key: k, Value: val})
			batch.Txs = append(batch.Txs, tx)
		}
	}
	batch.Frontier = acc.Frontier()
	if err := st.Commit(batch); err != nil {
		f.Fatal(err)
	}
	if err := st.SaveSafetyData(SafetyData{Epoch: 1, LastVotedRound: 5}); err != nil {
		f.Fatal(err)
	}

	type target struct{ bucket, key []byte }
	targets := []target{
		{bucketBlocks, nodes[1].Block.ID[:]},
		{bucketBlocks, nodes[2].Block.ID[:]}, // the root
		{bucketQCs, nodes[2].Block.ID[:]},
		{bucketCommits, nodes[2].Block.ID[:]},
		{bucketLedger, keyCommitted},
		{bucketSafety, keySafety},
		{bucketTxs, versionKey(1)},
		{bucketNodes, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{bucketState, batch.Writes[0].Key},
	}
	for i, tg := range targets {
		err := st.db.View(func(tx *bolt.Tx) error {
			f.Add(uint8(i), append([]byte(nil), tx.Bucket(tg.bucket).Get(tg.key)...))
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
		if len(value) == 0 {
			err = tx.Bucket(tg.bucket).Delete(tg.key)
		} else {
			err = tx.Bucket(tg.bucket).Put(tg.key, value)
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
	})
}
