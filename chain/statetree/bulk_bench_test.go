package statetree_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/p2pnode/p2pnode/chain/statetree"
)

// BenchmarkBulkBuild1M builds the tree of a million keys from its leaves
// in key-hash order with a Restorer (trusted leaves, no proofs): the cost
// of building a whole state's tree at once, which a node that settles an
// empty tree, or restores a snapshot, pays per leaf. The value hashes are
// computed beforehand, as a snapshot's leaves carry them.
func BenchmarkBulkBuild1M(b *testing.B) {
	const n = 1 << 20
	leaves := make([]statetree.Leaf, n)
	for i := range leaves {
		k := binary.BigEndian.AppendUint64(nil, uint64(i))
		v := bytes.Repeat([]byte{byte(i)}, 90)
		leaves[i] = statetree.Leaf{KeyHash: statetree.KeyHash(k), ValueHash: sha256.Sum256(v), Key: k, Value: v}
	}
	slices.SortFunc(leaves, func(x, y statetree.Leaf) int { return bytes.Compare(x.KeyHash[:], y.KeyHash[:]) })
	b.ResetTimer()
	for range b.N {
		r := statetree.NewRestorer(1, [32]byte{})
		nodes := 0
		for i := 0; i < n; i += 4096 {
			if err := r.Add(slices.Clone(leaves[i : i+4096])); err != nil {
				b.Fatal(err)
			}
			nodes += len(r.Take())
		}
		_, rest := r.Finish()
		nodes += len(rest)
		b.ReportMetric(float64(nodes)/n, "nodes/leaf")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/leaf")
}
