package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
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
		if err := st.Commit(withTree(t, st, b)); err != nil {
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

// TestStateRunsSealed commits batches big enough to reach maxMergedRun and
// checks that no merge makes a larger run, that runs stop merging once
// they would, and that a key written again after its run was sealed reads
// its newest value.
func TestStateRunsSealed(t *testing.T) {
	v := chaintest.NewValidators(62, 4)
	st, err := Open(filepath.Join(t.TempDir(), "state.db"), v.Genesis)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	acc := chain.NewAccumulator()
	const perBatch = maxMergedRun * 3 / 8
	key := func(i int) []byte { return binary.BigEndian.AppendUint64([]byte{'s'}, uint64(i)) }
	commit := func(round int, keys []int) {
		t.Helper()
		b := &ledger.Batch{StartVersion: acc.Size()}
		for j, k := range keys {
			tx, err := chain.EncodeKV(key(k), []byte{byte(round)})
			if err != nil {
				t.Fatal(err)
			}
			b.Txs = append(b.Txs, tx)
			acc.AppendLeaf(chain.TxLeafHash(tx), func(id compact.NodeID, h chain.Hash) {
				b.Nodes = append(b.Nodes, ledger.Node{ID: id, Hash: h})
			})
			b.Writes = append(b.Writes, ledger.KV{Key: key(k), Value: []byte{byte(round)}, Version: b.StartVersion + uint64(j)})
		}
		b.Frontier = acc.Frontier()
		if err := st.Commit(withTree(t, st, b)); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	const rounds = 6
	for round := range rounds {
		keys := make([]int, perBatch)
		for j := range keys {
			keys[j] = round*perBatch + j
		}
		commit(round, keys)
	}
	commit(rounds, []int{0, perBatch + 1}) // keys of the oldest, sealed runs

	var counts []uint64
	if err := st.db.View(func(tx *bolt.Tx) error {
		c := newRunCursor(tx.Bucket(bucketState))
		for k, val := c.last(); k != nil; k, val = c.prev() {
			r, err := decodeRun(bucketState, k, val, maxStateEntry)
			if err != nil {
				return err
			}
			counts = append(counts, r.count())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	total := uint64(0)
	for _, n := range counts {
		if n > maxMergedRun {
			t.Errorf("a state run holds %d entries, bound %d", n, maxMergedRun)
		}
		total += n
	}
	// Each sealed run holds two batches; the last commit's two writes are
	// a run of their own.
	if want := uint64(rounds*perBatch + 2); total != want || len(counts) != rounds/2+1 {
		t.Errorf("state runs %v (%d entries), want %d runs of %d entries", counts, total, rounds/2+1, want)
	}
	for _, k := range [][]byte{[]byte("s"), key(rounds * perBatch)} { // below and above every run
		if got, ok, err := st.Get(k); ok || err != nil {
			t.Errorf("Get(%x) = %x, %v, %v; want not found", k, got, ok, err)
		}
	}
	for _, c := range []struct {
		key  int
		want byte
	}{{0, rounds}, {perBatch + 1, rounds}, {1, 0}, {2*perBatch + 5, 2}, {rounds*perBatch - 1, rounds - 1}} {
		got, ok, err := st.Get(key(c.key))
		if err != nil || !ok || !bytes.Equal(got, []byte{c.want}) {
			t.Errorf("Get(%d) = %x, %v, %v; want %x", c.key, got, ok, err, c.want)
		}
	}
}

// TestMergeRuns merges random state runs of keys of random lengths that
// repeat within and across runs and checks the result against a model:
// sorted, one entry per key, the newest run's entry winning.
func TestMergeRuns(t *testing.T) {
	rng := rand.New(rand.NewPCG(63, 1))
	for round := range 200 {
		want := map[string]uint64{}
		srcs := make([]run, 1+rng.IntN(5))
		for i := range srcs {
			keys := map[string]uint64{}
			for range 1 + rng.IntN(50) {
				k := make([]byte, 1+rng.IntN(12))
				for j := range k {
					k[j] = byte('a' + rng.IntN(3))
				}
				keys[string(k)] = rng.Uint64()
			}
			var items [][]byte
			for _, k := range slices.Sorted(maps.Keys(keys)) {
				items = append(items, binary.BigEndian.AppendUint64([]byte(k), keys[k]))
				if _, ok := want[k]; !ok {
					want[k] = keys[k] // srcs are newest first
				}
			}
			enc := appendRun(nil, items)
			r, err := decodeRun(bucketState, versionKey(uint64(i)), enc, maxStateEntry)
			if err != nil {
				t.Fatal(err)
			}
			srcs[i] = r
		}
		enc, err := mergeRuns(new(scratch), srcs)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		r, err := decodeRun(bucketState, versionKey(0), enc, maxStateEntry)
		if err != nil {
			t.Fatalf("round %d: merged run: %v", round, err)
		}
		if r.count() != uint64(len(want)) {
			t.Fatalf("round %d: %d entries, want %d", round, r.count(), len(want))
		}
		for i, k := range slices.Sorted(maps.Keys(want)) {
			e, err := stateEntry(r, uint64(i))
			if err != nil || string(entryKey(e)) != k || binary.BigEndian.Uint64(e[len(e)-8:]) != want[k] {
				t.Fatalf("round %d: entry %d is %x (%v), want key %q version %d", round, i, e, err, k, want[k])
			}
		}
	}
	// An entry too short to hold a key and a version is corrupt.
	bad, err := decodeRun(bucketState, versionKey(1), appendRun(nil, [][]byte{make([]byte, 9), make([]byte, 8)}), maxStateEntry)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mergeRuns(new(scratch), []run{bad, bad}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("merge of a corrupt run: %v, want ErrCorrupt", err)
	}
}

// BenchmarkMergeRuns merges two state runs of 64 Ki entries of random
// 8-byte keys.
func BenchmarkMergeRuns(b *testing.B) {
	rng := rand.New(rand.NewPCG(64, 1))
	srcs := make([]run, 2)
	for i := range srcs {
		items := make([][]byte, 1<<16)
		for j := range items {
			items[j] = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, rng.Uint64()), uint64(j))
		}
		slices.SortFunc(items, func(x, y []byte) int { return bytes.Compare(x[:8], y[:8]) })
		r, err := decodeRun(bucketState, versionKey(uint64(i)), appendRun(nil, items), maxStateEntry)
		if err != nil {
			b.Fatal(err)
		}
		srcs[i] = r
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := mergeRuns(new(scratch), srcs); err != nil {
			b.Fatal(err)
		}
	}
}

// TestNodesAcrossRuns commits batches of 1 to 9 transactions, so that the
// nodes below nodeRunLevel often cover transactions of two runs, and checks
// every node of the accumulator after each.
func TestNodesAcrossRuns(t *testing.T) {
	v := chaintest.NewValidators(65, 4)
	st, err := Open(filepath.Join(t.TempDir(), "nodes.db"), v.Genesis)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rng := rand.New(rand.NewPCG(65, 1))
	acc := chain.NewAccumulator()
	model := map[compact.NodeID]chain.Hash{}
	for round := range 30 {
		b := &ledger.Batch{StartVersion: acc.Size()}
		for i := range 1 + rng.IntN(9) {
			b.Txs = append(b.Txs, []byte{0x42, byte(round), byte(i)})
			acc.AppendLeaf(chain.TxLeafHash(b.Txs[i]), func(id compact.NodeID, h chain.Hash) {
				b.Nodes = append(b.Nodes, ledger.Node{ID: id, Hash: h})
				model[id] = h
			})
		}
		b.Frontier = acc.Frontier()
		if err := st.Commit(withTree(t, st, b)); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		ids := slices.Collect(maps.Keys(model))
		hs, err := st.Nodes(ids)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for i, id := range ids {
			if hs[i] != model[id] {
				t.Fatalf("round %d: node (%d, %d) is %s, want %s", round, id.Level, id.Index, hs[i].Short(), model[id].Short())
			}
		}
	}
}
