package store

import (
	"bytes"
	"math/bits"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/transparency-dev/merkle/compact"
	bolt "go.etcd.io/bbolt"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/chain/ledger"
)

// TestStateRuns commits batches of random sizes over a small key space and
// checks, after each, every key against a model and that the number of
// state runs stays logarithmic in the number of writes.
func TestStateRuns(t *testing.T) {
	v := chaintest.NewValidators(61, 4)
	st, err := Open(filepath.Join(t.TempDir(), "state.db"), v.Genesis)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rng := rand.New(rand.NewPCG(61, 1))
	acc := chain.NewAccumulator()
	model := map[string]string{}
	writes := 0
	for round := range 60 {
		n := 1 + rng.IntN(40)
		b := &ledger.Batch{StartVersion: acc.Size()}
		last := map[string]int{}
		for i := range n {
			key := []byte{'k', byte(rng.IntN(200))}
			tx, err := chain.EncodeKV(key, []byte{byte(round), byte(i)})
			if err != nil {
				t.Fatal(err)
			}
			b.Txs = append(b.Txs, tx)
			last[string(key)] = i
			acc.AppendLeaf(chain.TxLeafHash(tx), func(id compact.NodeID, h chain.Hash) {
				b.Nodes = append(b.Nodes, ledger.Node{ID: id, Hash: h})
			})
		}
		for k, i := range last {
			_, val, _ := chain.DecodeKV(b.Txs[i])
			b.Writes = append(b.Writes, ledger.KV{Key: []byte(k), Value: val, Version: b.StartVersion + uint64(i)})
			model[k] = string(val)
		}
		slices.SortFunc(b.Writes, func(x, y ledger.KV) int { return bytes.Compare(x.Key, y.Key) })
		writes += len(b.Writes)
		b.Frontier = acc.Frontier()
		if err := st.Commit(b); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for k, want := range model {
			got, ok, err := st.Get([]byte(k))
			if err != nil || !ok || string(got) != want {
				t.Fatalf("round %d: Get(%x) = %x, %v, %v; want %x", round, k, got, ok, err, want)
			}
		}
		if _, ok, err := st.Get([]byte("absent")); ok || err != nil {
			t.Fatalf("round %d: Get(absent) = %v, %v", round, ok, err)
		}
		runs := 0
		if err := st.db.View(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketState).ForEach(func([]byte, []byte) error { runs++; return nil })
		}); err != nil {
			t.Fatal(err)
		}
		if limit := bits.Len(uint(writes)) + 1; runs > limit {
			t.Fatalf("round %d: %d state runs after %d writes, want at most %d", round, runs, writes, limit)
		}
	}
}
