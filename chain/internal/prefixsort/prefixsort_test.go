package prefixsort

import (
	"math/rand/v2"
	"slices"
	"testing"
)

type item struct{ key, seq uint64 }

func TestStable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 5, 63, 64, 1000, 5000} {
		for _, spread := range []uint64{3, 1 << 16, 1<<64 - 1} {
			xs := make([]item, n)
			for i := range xs {
				xs[i] = item{key: rng.Uint64() % spread << 8, seq: uint64(i)}
			}
			want := slices.Clone(xs)
			slices.SortStableFunc(want, func(a, b item) int {
				switch {
				case a.key < b.key:
					return -1
				case a.key > b.key:
					return 1
				}
				return 0
			})
			if got := Stable(xs, func(x *item) uint64 { return x.key }); !slices.Equal(got, want) {
				t.Fatalf("n %d, spread %d: not the stable order", n, spread)
			}
		}
	}
}
