package ledger_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/transparency-dev/merkle/compact"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/chain/statetree"
)

// memBatch returns the batch appending txs to an empty ledger, with every
// node the appends complete.
func memBatch(txs [][]byte) *ledger.Batch {
	acc := chain.NewAccumulator()
	b := &ledger.Batch{Txs: txs}
	for _, tx := range txs {
		acc.AppendLeaf(chain.TxLeafHash(tx), func(id compact.NodeID, h chain.Hash) {
			b.Nodes = append(b.Nodes, ledger.Node{ID: id, Hash: h})
		})
	}
	b.Frontier = acc.Frontier()
	return b
}

func cloneTxs(txs [][]byte) [][]byte {
	out := make([][]byte, len(txs))
	for i, tx := range txs {
		out[i] = bytes.Clone(tx)
	}
	return out
}

func TestMemStorageRejectsAtomically(t *testing.T) {
	kv := func(k, v string) []byte {
		tx, err := chain.EncodeKV([]byte(k), []byte(v))
		if err != nil {
			t.Fatal(err)
		}
		return tx
	}
	txs := [][]byte{kv("a", "1"), kv("b", "2"), []byte("x"), kv("a", "3")}
	valid := func() *ledger.Batch {
		b := memBatch(cloneTxs(txs))
		b.Writes = []ledger.KV{{Key: []byte("a"), Value: []byte("3"), Version: 3}, {Key: []byte("b"), Value: []byte("2"), Version: 1}}
		ws := []statetree.Write{
			{KeyHash: statetree.KeyHash([]byte("a")), Key: []byte("a"), Value: []byte("3")},
			{KeyHash: statetree.KeyHash([]byte("b")), Key: []byte("b"), Value: []byte("2")},
		}
		slices.SortFunc(ws, func(x, y statetree.Write) int { return bytes.Compare(x.KeyHash[:], y.KeyHash[:]) })
		tb, err := statetree.New(statetree.NewMemStore()).Update(statetree.Empty, 4, ws)
		if err != nil {
			t.Fatal(err)
		}
		b.Tree = []*statetree.Batch{tb}
		return b
	}
	li := &chain.LedgerInfoWithSignatures{LedgerInfo: chain.LedgerInfo{CommitInfo: chain.BlockInfo{Version: 4, Round: 1}}}
	tests := []struct {
		name   string
		mutate func(b *ledger.Batch)
	}{
		{"nil", nil},
		{"wrong start", func(b *ledger.Batch) { b.StartVersion = 1 }},
		{"empty tx", func(b *ledger.Batch) { b.Txs[2] = nil }},
		{"short frontier", func(b *ledger.Batch) { b.Frontier = b.Frontier[1:] }},
		{"node gap", func(b *ledger.Batch) { b.Nodes = slices.Delete(b.Nodes, 0, 1) }},
		{"node twice", func(b *ledger.Batch) { b.Nodes = append(b.Nodes, b.Nodes[0]) }},
		{"node past version", func(b *ledger.Batch) {
			b.Nodes = append(b.Nodes, ledger.Node{ID: compact.NewNodeID(0, 4)})
		}},
		{"huge node", func(b *ledger.Batch) {
			b.Nodes = append(b.Nodes, ledger.Node{ID: compact.NewNodeID(63, 1<<62)})
		}},
		{"empty key", func(b *ledger.Batch) { b.Writes[0].Key = nil }},
		{"write of another tx", func(b *ledger.Batch) { b.Writes[0].Version = 1 }},
		{"write outside the batch", func(b *ledger.Batch) { b.Writes[0].Version = 4 }},
		{"tree not above the stored one", func(b *ledger.Batch) { b.Tree[0].Version = 0 }},
		{"tree past the batch", func(b *ledger.Batch) { b.Tree[0].Version = 5 }},
		{"trees out of order", func(b *ledger.Batch) { b.Tree = append(b.Tree, b.Tree[0]) }},
		{"ledger info past version", func(b *ledger.Batch) {
			b.LedgerInfo = &chain.LedgerInfoWithSignatures{LedgerInfo: chain.LedgerInfo{CommitInfo: chain.BlockInfo{Version: 5}}}
		}},
	}
	st := ledger.NewMemStorage()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b *ledger.Batch
			if tt.mutate != nil {
				b = valid()
				tt.mutate(b)
			}
			if err := st.Commit(b); !errors.Is(err, ledger.ErrInvalidBatch) {
				t.Fatalf("Commit = %v, want ErrInvalidBatch", err)
			}
			c, _ := st.Committed()
			_, ok, _ := st.Get([]byte("a"))
			if c.Version != 0 || len(c.Frontier) != 0 || c.LedgerInfo != nil || ok {
				t.Fatalf("a rejected batch changed the storage: %+v", c)
			}
		})
	}

	b := valid()
	b.LedgerInfo = li
	if err := st.Commit(b); err != nil {
		t.Fatal(err)
	}
	if n, err := st.Node(statetree.NodeKey{Version: 4}); err != nil || n.Hash() != b.Tree[0].Root {
		t.Fatalf("Node(root of 4) = %v, %v; want the tree's root %s", n, err, b.Tree[0].Root.Short())
	}
	// The storage copied its inputs.
	b.Txs[0][0] ^= 0xff
	b.Writes[0].Value = append(b.Writes[0].Value[:0], '9')
	b.Frontier[0][0] ^= 1
	li.LedgerInfo.CommitInfo.Round = 7

	c, err := st.Committed()
	if err != nil || c.Version != 4 || c.LedgerInfo.LedgerInfo.CommitInfo.Round != 1 || c.Frontier[0] != memBatch(txs).Frontier[0] {
		t.Fatalf("Committed() = %+v, %v", c, err)
	}
	got, err := st.Txs(0, 4)
	if err != nil || !slices.EqualFunc(got, txs, bytes.Equal) {
		t.Fatalf("Txs = %x, %v; want %x", got, err, txs)
	}
	got[1][0] ^= 0xff // and returns copies
	if again, _ := st.Txs(1, 1); again[0][0] != txs[1][0] {
		t.Fatal("Txs returned the storage's own bytes")
	}
	if v, ok, err := st.Get([]byte("a")); err != nil || !ok || string(v) != "3" {
		t.Fatalf("Get(a) = %q, %v, %v", v, ok, err)
	}
	if _, err := st.Txs(3, 2); !errors.Is(err, ledger.ErrNotStored) {
		t.Fatalf("Txs past version = %v, want ErrNotStored", err)
	}
	if _, err := st.Nodes([]compact.NodeID{compact.NewNodeID(2, 0), compact.NewNodeID(2, 1)}); !errors.Is(err, ledger.ErrNotStored) {
		t.Fatalf("Nodes(missing) = %v, want ErrNotStored", err)
	}
	hs, err := st.Nodes([]compact.NodeID{compact.NewNodeID(2, 0)})
	if err != nil || hs[0] != c.Frontier[0] {
		t.Fatalf("Nodes(root of 4) = %v, %v; want the frontier", hs, err)
	}
	// A conflicting node is rejected.
	next := memBatch(append(slices.Clone(txs), []byte("y")))
	next.StartVersion, next.Txs = 4, next.Txs[4:]
	next.Nodes = append(next.Nodes[len(next.Nodes)-1:], ledger.Node{ID: compact.NewNodeID(0, 0)})
	if err := st.Commit(next); !errors.Is(err, ledger.ErrInvalidBatch) {
		t.Fatalf("Commit(conflicting node) = %v, want ErrInvalidBatch", err)
	}
}
