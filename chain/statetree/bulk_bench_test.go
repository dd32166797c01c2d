package statetree_test

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/p2pnode/p2pnode/chain/statetree"
)

func BenchmarkBulkBuild1M(b *testing.B) {
	const n = 1 << 20
	leaves := make([]statetree.Leaf, n)
	for i := range leaves {
		k := binary.BigEndian.AppendUint64(nil, uint64(i))
		v := bytes.Repeat([]byte{byte(i)}, 90)
		leaves[i] = statetree.Leaf{KeyHash: statetree.KeyHash(k), Key: k, Value: v}
	}
	slices.SortFunc(leaves, func(x, y statetree.Leaf) int { return bytes.Compare(x.KeyHash[:], y.KeyHash[:]) })
	b.ResetTimer()
	for range b.N {
		r := statetree.NewRestorer(1, [32]byte{})
		nodes := 0
		for i := 0; i < n; i += 4096 {
			ls := slices.Clone(leaves[i : i+4096])
			for j := range ls {
				ls[j].ValueHash = [32]byte{}
			}
			if err := r.Add(ls); err != nil {
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
