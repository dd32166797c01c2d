package ledger

import (
	"bytes"
	"encoding/binary"
	"slices"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/internal/prefixsort"
)

// stateWrites returns the state writes of txs, the transactions from
// version start on: one per key, the last write of each key, sorted by key.
// Keys and values alias txs.
//
// The writes are sorted on the keys' first 8 bytes as an integer, by a
// stable radix sort (so writes of one prefix keep their transaction order),
// and only the few writes that share a prefix are then compared as keys: a
// comparison sort of the writes of a commit cost more than its hashing.
func stateWrites(start uint64, txs [][]byte) []KV {
	var ws []prefixed
	for i, tx := range txs {
		k, _, err := chain.DecodeKV(tx)
		if err != nil {
			continue
		}
		if ws == nil {
			ws = make([]prefixed, 0, len(txs)-i)
		}
		from := cap(tx) - cap(k) // k aliases tx from this offset on
		ws = append(ws, prefixed{prefix: keyPrefix(k), i: i, from: uint32(from), to: uint32(from + len(k))})
	}
	ws = prefixsort.Stable(ws, func(w *prefixed) uint64 { return w.prefix })
	// Keys are read from the transactions only where prefixes tie: the
	// sorted order visits the transactions at random.
	key := func(w prefixed) []byte { return txs[w.i][w.from:w.to] }
	for from := 0; from < len(ws); {
		to := from + 1
		for to < len(ws) && ws[to].prefix == ws[from].prefix {
			to++
		}
		if to-from > 1 {
			slices.SortStableFunc(ws[from:to], func(a, b prefixed) int { return bytes.Compare(key(a), key(b)) })
		}
		from = to
	}
	out := make([]KV, 0, len(ws))
	for j, w := range ws {
		if j+1 < len(ws) && w.prefix == ws[j+1].prefix && bytes.Equal(key(w), key(ws[j+1])) {
			continue // a later write of the key follows
		}
		tx := txs[w.i]
		out = append(out, KV{Key: tx[w.from:w.to:w.to], Value: tx[w.to:], Version: start + uint64(w.i)})
	}
	return out
}

// prefixed is the write of transaction i, whose key is its bytes [from, to)
// and begins with prefix.
type prefixed struct {
	prefix   uint64
	i        int
	from, to uint32
}

// keyPrefix is the first 8 bytes of k, zero-padded, as a big-endian integer:
// keys in prefix order are in key order but for keys of equal prefix.
func keyPrefix(k []byte) uint64 {
	var p [8]byte
	copy(p[:], k)
	return binary.BigEndian.Uint64(p[:])
}
