// Package prefixsort sorts by an integer key, stably, with a
// least-significant-byte radix sort: the ledger's state writes by their
// keys' first 8 bytes, the store's transaction hashes by theirs. A
// comparison sort of a commit's entries cost more than their hashing.
package prefixsort

import "slices"

// Stable sorts xs by key, stably, and returns xs or a slice of the same
// length holding the result.
func Stable[T any](xs []T, key func(*T) uint64) []T {
	if len(xs) < 64 {
		slices.SortStableFunc(xs, func(a, b T) int {
			ka, kb := key(&a), key(&b)
			switch {
			case ka < kb:
				return -1
			case ka > kb:
				return 1
			}
			return 0
		})
		return xs
	}
	var counts [8][256]int
	for i := range xs {
		k := key(&xs[i])
		for d := range 8 {
			counts[d][byte(k>>(8*d))]++
		}
	}
	tmp := make([]T, len(xs))
	for d := range 8 {
		c := &counts[d]
		if c[byte(key(&xs[0])>>(8*d))] == len(xs) {
			continue // every key has this byte
		}
		at := 0
		for b := range c {
			c[b], at = at, at+c[b]
		}
		for i := range xs {
			b := byte(key(&xs[i]) >> (8 * d))
			tmp[c[b]] = xs[i]
			c[b]++
		}
		xs, tmp = tmp, xs
	}
	return xs
}
