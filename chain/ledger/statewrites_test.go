package ledger

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
)

// TestStateWrites checks stateWrites against a map model on keys that share
// long prefixes, differ in length and repeat, mixed with non-KV
// transactions.
func TestStateWrites(t *testing.T) {
	rng := rand.New(rand.NewPCG(71, 1))
	for round := range 50 {
		const start = 1000
		var txs [][]byte
		want := map[string]uint64{}
		for i := range 1 + rng.IntN(300<<(round%3)) {
			if rng.IntN(10) == 0 {
				txs = append(txs, []byte{0x42, byte(i)})
				continue
			}
			key := bytes.Repeat([]byte{'k'}, rng.IntN(12))
			key = append(key, byte(rng.IntN(4)))
			if rng.IntN(2) == 0 {
				key = append(key, 0)
			}
			if round%2 == 1 { // keys that differ in every byte of their prefix
				key = binary.BigEndian.AppendUint64(nil, rng.Uint64()>>(8*rng.IntN(8)))
				key = key[rng.IntN(3):]
			}
			tx, err := chain.EncodeKV(key, []byte{byte(i)})
			if err != nil {
				t.Fatal(err)
			}
			txs = append(txs, tx)
			want[string(key)] = start + uint64(len(txs)-1)
		}
		got := stateWrites(start, txs)
		if !slices.IsSortedFunc(got, func(a, b KV) int { return bytes.Compare(a.Key, b.Key) }) || len(got) != len(want) {
			t.Fatalf("round %d: %d writes, want %d sorted", round, len(got), len(want))
		}
		for i, w := range got {
			if i > 0 && bytes.Equal(got[i-1].Key, w.Key) {
				t.Fatalf("round %d: key %x twice", round, w.Key)
			}
			_, v, _ := chain.DecodeKV(txs[w.Version-start])
			if want[string(w.Key)] != w.Version || !bytes.Equal(v, w.Value) {
				t.Fatalf("round %d: key %x at version %d, want %d", round, w.Key, w.Version, want[string(w.Key)])
			}
		}
	}
}

// BenchmarkStateWrites computes the state writes of a commit of 64 blocks
// of 100 transactions with random 8-byte keys.
func BenchmarkStateWrites(b *testing.B) {
	rng := rand.New(rand.NewPCG(72, 1))
	txs := make([][]byte, 6400)
	for i := range txs {
		tx, err := chain.EncodeKV(binary.BigEndian.AppendUint64(nil, rng.Uint64()), make([]byte, 90))
		if err != nil {
			b.Fatal(err)
		}
		txs[i] = tx
	}
	b.ReportAllocs()
	for b.Loop() {
		stateWrites(0, txs)
	}
}
