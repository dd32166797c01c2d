package store

import (
	"bytes"
	"slices"
	"testing"

	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/chain/statetree"
)

// withTree sets b.Tree to the state tree's update of b's writes on the
// tree r holds at b.StartVersion, as the ledger computes it, and returns b.
func withTree(t testing.TB, r statetree.NodeReader, b *ledger.Batch) *ledger.Batch {
	t.Helper()
	end := b.StartVersion + uint64(len(b.Txs))
	if end == b.StartVersion {
		return b
	}
	ws := make([]statetree.Write, len(b.Writes))
	for i, w := range b.Writes {
		ws[i] = statetree.Write{KeyHash: statetree.KeyHash(w.Key), Key: w.Key, Value: w.Value}
	}
	slices.SortFunc(ws, func(x, y statetree.Write) int { return bytes.Compare(x.KeyHash[:], y.KeyHash[:]) })
	base := b.StartVersion
	if base == 0 {
		base = statetree.Empty
	}
	tb, err := statetree.New(r).Update(base, end, ws)
	if err != nil {
		t.Fatalf("state tree of the batch at %d: %v", b.StartVersion, err)
	}
	b.Tree = []*statetree.Batch{tb}
	return b
}

// WithTree is withTree for the package's external tests.
var WithTree = withTree
