package chain_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/transparency-dev/merkle/compact"

	"github.com/p2pnode/p2pnode/chain"
)

func TestKV(t *testing.T) {
	long := bytes.Repeat([]byte{'k'}, chain.MaxKeySize)
	tests := []struct {
		name       string
		key, value []byte
		wantTx     []byte // nil: EncodeKV must fail
	}{
		{"short", []byte("a"), []byte("b"), []byte{chain.TxKindKV, 1, 'a', 'b'}},
		{"empty value", []byte("ab"), nil, []byte{chain.TxKindKV, 2, 'a', 'b'}},
		{"longest key", long, []byte("v"), append(append([]byte{chain.TxKindKV, 0x80, 0x02}, long...), 'v')},
		{"empty key", nil, []byte("v"), nil},
		{"key too long", append(long, 'k'), nil, nil},
		{"transaction too large", []byte("k"), make([]byte, chain.MaxTxSize), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tx, err := chain.EncodeKV(tc.key, tc.value)
			if tc.wantTx == nil {
				if err == nil {
					t.Fatalf("EncodeKV succeeded: %x", tx)
				}
				return
			}
			if err != nil || !bytes.Equal(tx, tc.wantTx) {
				t.Fatalf("EncodeKV = %x, %v; want %x", tx, err, tc.wantTx)
			}
			k, v, err := chain.DecodeKV(tx)
			if err != nil || !bytes.Equal(k, tc.key) || !bytes.Equal(v, tc.value) {
				t.Fatalf("DecodeKV = %q, %q, %v", k, v, err)
			}
		})
	}
	for _, tx := range [][]byte{
		nil,
		{chain.TxKindKV, 1},           // too short
		{0x02, 1, 'k', 'v'},           // another kind
		{chain.TxKindKV, 0, 'k'},      // empty key
		{chain.TxKindKV, 5, 'k', 'v'}, // key longer than the rest
		{chain.TxKindKV, 0x80, 0x80},  // unterminated length
		append([]byte{chain.TxKindKV, 0x81, 0x02}, make([]byte, 300)...), // key over MaxKeySize
	} {
		if _, _, err := chain.DecodeKV(tx); !errors.Is(err, chain.ErrNotKV) {
			t.Errorf("DecodeKV(%x) = %v, want %v", tx, err, chain.ErrNotKV)
		}
	}
}

func TestAccumulator(t *testing.T) {
	acc := chain.NewAccumulator()
	if acc.Root() != chain.EmptyAccumulatorRoot || acc.Size() != 0 {
		t.Fatal("empty accumulator")
	}
	// One leaf: the root is the leaf hash, SHA-256(0x00 || tx).
	acc.Append([]byte("tx0"))
	if acc.Root() != chain.TxLeafHash([]byte("tx0")) {
		t.Fatal("root of one leaf is not its leaf hash")
	}
	var visited int
	for i := 1; i < 7; i++ {
		acc.AppendLeaf(chain.TxLeafHash([]byte{byte(i)}), func(compact.NodeID, chain.Hash) { visited++ })
	}
	// Appending leaves 1 to 6 visits each leaf and the perfect subtrees it
	// closes: [0,2) after leaf 1, [2,4) and [0,4) after leaf 3, [4,6) after
	// leaf 5: 6 + 4 nodes.
	if acc.Size() != 7 || visited != 10 {
		t.Fatalf("size %d, visited %d nodes, want 7 and 10", acc.Size(), visited)
	}
	fr := acc.Frontier()
	if len(fr) != 3 { // 7 = 4 + 2 + 1
		t.Fatalf("frontier of %d hashes, want 3", len(fr))
	}
	re, err := chain.AccumulatorFromFrontier(acc.Size(), fr)
	if err != nil || re.Root() != acc.Root() {
		t.Fatalf("rebuilt root differs: %v", err)
	}
	c := acc.Clone()
	c.Append([]byte("more"))
	re.Append([]byte("more"))
	if c.Root() != re.Root() || acc.Size() != 7 {
		t.Fatal("clone and rebuilt accumulator diverge, or the clone shares state")
	}
	if _, err := chain.AccumulatorFromFrontier(7, fr[:2]); err == nil {
		t.Fatal("frontier of the wrong length accepted")
	}
}
