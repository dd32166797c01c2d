package store

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	bolt "go.etcd.io/bbolt"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/ledger"
)

// Limits of one run of the txs and nodes buckets. A batch larger than this
// is stored as several runs.
const (
	maxRunTxs   = 1 << 16
	maxRunBytes = 32 << 20
)

// A run is a list of byte strings (items) as one stored value:
//
//	count uint32 | end offset of each item uint32 (count of them) | items
//
// The end offsets count from the first item's first byte. A tx run is the
// transactions of consecutive versions under the version of the first; a
// state run is sorted state entries (see staterun.go).

// runSize is the size of the run of items.
func runSize(items [][]byte) int {
	size := 4 + 4*len(items)
	for _, it := range items {
		size += len(it)
	}
	return size
}

// appendRun appends the run of items to dst.
func appendRun(dst []byte, items [][]byte) []byte {
	dst = slices.Grow(dst, runSize(items))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(items)))
	end := uint32(0)
	for _, it := range items {
		end += uint32(len(it))
		dst = binary.BigEndian.AppendUint32(dst, end)
	}
	for _, it := range items {
		dst = append(dst, it...)
	}
	return dst
}

// run is a view of a stored run; it aliases the stored value. Its header
// is checked when it is decoded, each item when it is read.
type run struct {
	bucket, key []byte // where it is stored, for errors
	ends        []byte // 4 bytes per item
	data        []byte
	maxItem     uint32
}

// decodeRun checks the header of the run v stored under key in bucket,
// whose items have 1 to maxItem bytes.
func decodeRun(bucket, key, v []byte, maxItem uint32) (run, error) {
	if len(v) < 4 {
		return run{}, fmt.Errorf("%w: %s key %s: truncated run", ErrCorrupt, bucket, keyString(key))
	}
	n := uint64(binary.BigEndian.Uint32(v))
	if n == 0 || uint64(len(v)) < 4+4*n || uint64(binary.BigEndian.Uint32(v[4*n:])) != uint64(len(v))-4-4*n {
		return run{}, fmt.Errorf("%w: %s key %s: run of %d items in %d bytes", ErrCorrupt, bucket, keyString(key), n, len(v))
	}
	return run{bucket: bucket, key: key, ends: v[4 : 4+4*n], data: v[4+4*n:], maxItem: maxItem}, nil
}

// count is the number of items of r.
func (r run) count() uint64 { return uint64(len(r.ends) / 4) }

// offset is the offset in r.data of item i (of the end for r.count()).
func (r run) offset(i uint64) uint32 {
	if i == 0 {
		return 0
	}
	return binary.BigEndian.Uint32(r.ends[4*(i-1):])
}

// item returns item i of r, aliasing r; i < r.count().
func (r run) item(i uint64) ([]byte, error) {
	from, to := r.offset(i), r.offset(i+1)
	if to <= from || to-from > r.maxItem || uint64(to) > uint64(len(r.data)) {
		return nil, fmt.Errorf("%w: %s key %s: item %d has bounds [%d, %d)", ErrCorrupt, r.bucket, keyString(r.key), i, from, to)
	}
	return r.data[from:to], nil
}

// txRun decodes the tx run v under key k and returns its first version.
func txRun(k, v []byte) (run, uint64, error) {
	if len(k) != 8 {
		return run{}, 0, fmt.Errorf("%w: %s key %s is not a version", ErrCorrupt, bucketTxs, keyString(k))
	}
	r, err := decodeRun(bucketTxs, k, v, chain.MaxTxSize)
	return r, binary.BigEndian.Uint64(k), err
}

// Each run is the single value, under runKey, of a nested bucket named by
// the run's key. bbolt rewrites every value of a leaf page it modifies, so
// runs stored side by side as plain values would rewrite the previous run
// at every commit; nested, a commit rewrites only bucket headers.
var runKey = []byte{0}

// runCursor walks a bucket of runs in key order.
type runCursor struct {
	b *bolt.Bucket
	c *bolt.Cursor
}

func newRunCursor(b *bolt.Bucket) runCursor { return runCursor{b: b, c: b.Cursor()} }

// value returns the run under k; nil if k is nil or holds no run.
func (r runCursor) value(k []byte) ([]byte, []byte) {
	if k == nil {
		return nil, nil
	}
	sub := r.b.Bucket(k)
	if sub == nil {
		return k, nil
	}
	return k, sub.Get(runKey)
}

func (r runCursor) last() ([]byte, []byte) { k, _ := r.c.Last(); return r.value(k) }
func (r runCursor) prev() ([]byte, []byte) { k, _ := r.c.Prev(); return r.value(k) }
func (r runCursor) next() ([]byte, []byte) { k, _ := r.c.Next(); return r.value(k) }

// floor positions r on the last key not above version v and returns it; nil
// if there is none.
func (r runCursor) floor(v uint64) ([]byte, []byte) {
	key := versionKey(v)
	k, _ := r.c.Seek(key)
	switch {
	case k == nil:
		return r.last()
	case string(k) == string(key):
		return r.value(k)
	}
	return r.prev()
}

// putRun stores the run value under key in b.
func putRun(b *bolt.Bucket, key, value []byte) error {
	sub, err := b.CreateBucket(key)
	if err != nil {
		return err
	}
	return sub.Put(runKey, value)
}

// readTxs reads the transactions of versions [start, start+n), which the
// caller checked are committed, into one allocation.
func readTxs(tx *bolt.Tx, start, n uint64) ([][]byte, error) {
	if n == 0 {
		return nil, nil
	}
	type part struct {
		r    run
		i, j uint64
	}
	cur := newRunCursor(tx.Bucket(bucketTxs))
	k, v := cur.floor(start)
	var parts []part
	size := 0
	for at, end := start, start+n; at < end; k, v = cur.next() {
		if k == nil {
			return nil, fmt.Errorf("%w: transaction %d is missing", ErrCorrupt, at)
		}
		r, first, err := txRun(k, v)
		if err != nil {
			return nil, err
		}
		if first > at || first+r.count() <= at {
			return nil, fmt.Errorf("%w: transaction %d is missing", ErrCorrupt, at)
		}
		p := part{r: r, i: at - first, j: min(end-first, r.count())}
		if from, to := r.offset(p.i), r.offset(p.j); from < to && uint64(to) <= uint64(len(r.data)) {
			size += int(to - from)
		}
		parts = append(parts, p)
		at = first + p.j
	}
	arena := make([]byte, 0, size)
	out := make([][]byte, 0, n)
	for _, p := range parts {
		for i := p.i; i < p.j; i++ {
			t, err := p.r.item(i)
			if err != nil {
				return nil, err
			}
			if len(arena)+len(t) > cap(arena) {
				return nil, fmt.Errorf("%w: transactions at %d overlap", ErrCorrupt, start)
			}
			arena = append(arena, t...)
			out = append(out, arena[len(arena)-len(t):len(arena):len(arena)])
		}
	}
	return out, nil
}

// txAt returns the transaction of version v, aliasing the stored value.
func txAt(tx *bolt.Tx, v uint64) ([]byte, error) {
	k, val := newRunCursor(tx.Bucket(bucketTxs)).floor(v)
	if k == nil {
		return nil, fmt.Errorf("%w: transaction %d is missing", ErrCorrupt, v)
	}
	r, first, err := txRun(k, val)
	if err != nil {
		return nil, err
	}
	if v-first >= r.count() {
		return nil, fmt.Errorf("%w: transaction %d is missing", ErrCorrupt, v)
	}
	return r.item(v - first)
}

// A node run is the accumulator nodes of level nodeRunLevel or above
// completed by appending the leaves of the versions of a tx run, in
// completion order (the roots of the perfect subtrees each leaf closes, by
// increasing level), 32 bytes each, under the same key as the tx run. A node
// of a lower level is hashed again, when asked, from the at most
// 2^nodeRunLevel - 1 transactions below it: chunk proofs need at most a few
// such nodes, and the run is a quarter of what it would be with every node.

// nodeRunLevel is the lowest level of the nodes node runs store.
const nodeRunLevel = 2

// nodesBefore is the number of nodes of the accumulator of v leaves: every
// node completed by appending leaves 0 to v-1.
func nodesBefore(v uint64) uint64 { return 2*v - uint64(bits.OnesCount64(v)) }

// storedBefore is the number of nodes of level nodeRunLevel or above of the
// accumulator of v leaves: those of the tree whose leaves are its perfect
// subtrees of level nodeRunLevel.
func storedBefore(v uint64) uint64 { return nodesBefore(v >> nodeRunLevel) }

// checkNodes checks that nodes are exactly those completed by appending
// the leaves of versions [start, end), in completion order.
func checkNodes(nodes []ledger.Node, start, end uint64) error {
	if uint64(len(nodes)) != nodesBefore(end)-nodesBefore(start) {
		return fmt.Errorf("%w: %d accumulator nodes for versions [%d, %d), want %d",
			ErrInvalid, len(nodes), start, end, nodesBefore(end)-nodesBefore(start))
	}
	i := 0
	for v := start; v < end; v++ {
		for l := range uint(bits.TrailingZeros64(v+1)) + 1 {
			if id := nodes[i].ID; id.Level != l || id.Index != v>>l {
				return fmt.Errorf("%w: accumulator node %d is (%d, %d), want (%d, %d)",
					ErrInvalid, i, id.Level, id.Index, l, v>>l)
			}
			i++
		}
	}
	return nil
}

// appendNodeRun appends to dst the hashes of the nodes of level
// nodeRunLevel or above among nodes.
func appendNodeRun(dst []byte, nodes []ledger.Node) []byte {
	out := dst
	for _, nd := range nodes {
		if nd.ID.Level >= nodeRunLevel {
			out = append(out, nd.Hash[:]...)
		}
	}
	return out
}

// putRuns stores the transactions of versions [start, start+len(txs)) and
// the nodes their leaves complete as runs of at most maxRunTxs transactions
// and about maxRunBytes bytes.
func putRuns(tx *bolt.Tx, sc *scratch, start uint64, txs [][]byte, nodes []ledger.Node) error {
	tb, nb := tx.Bucket(bucketTxs), tx.Bucket(bucketNodes)
	// Versions only grow: fill pages fully.
	tb.FillPercent, nb.FillPercent = appendFillPercent, appendFillPercent
	for len(txs) > 0 {
		n, size := 0, 0
		for n < len(txs) && n < maxRunTxs && (n == 0 || size+len(txs[n]) <= maxRunBytes) {
			size += len(txs[n])
			n++
		}
		end := start + uint64(n)
		nn := nodesBefore(end) - nodesBefore(start)
		key := versionKey(start)
		if err := putRun(tb, key, appendRun(sc.get(runSize(txs[:n])), txs[:n])); err != nil {
			return fmt.Errorf("store: put transactions at %d: %w", start, err)
		}
		stored := chain.HashSize * (storedBefore(end) - storedBefore(start))
		if err := putRun(nb, key, appendNodeRun(sc.get(int(stored)), nodes[:nn])); err != nil {
			return fmt.Errorf("store: put accumulator nodes at %d: %w", start, err)
		}
		txs, nodes, start = txs[n:], nodes[nn:], end
	}
	return nil
}

// nodeAt returns the hash of node id of the accumulator of version leaves,
// read from the node runs c walks or, below nodeRunLevel, hashed from the
// transactions of tx; a node wholly below the history kept comes from the
// pruned record's frontier.
func nodeAt(tx *bolt.Tx, c runCursor, id compact.NodeID, version uint64, pruned prunedRecord) (chain.Hash, error) {
	missing := fmt.Errorf("%w: accumulator node (level %d, index %d)", ErrNotAvailable, id.Level, id.Index)
	if id.Level >= 63 || id.Index >= (version>>id.Level) {
		return chain.Hash{}, missing
	}
	if pruned.straddles(id) {
		if pruned.Straddle != (chain.Hash{}) {
			return pruned.Straddle, nil
		}
		// A restored snapshot's record cannot know it: hash the last
		// leaf of its frontier with the transaction of its version.
		t, err := txAt(tx, pruned.Version)
		if err != nil {
			return chain.Hash{}, err
		}
		leaf := chain.TxLeafHash(t)
		return chain.Hash(rfc6962.DefaultHasher.HashChildren(pruned.Frontier[len(pruned.Frontier)-1][:], leaf[:])), nil
	}
	if (id.Index+1)<<id.Level <= pruned.Version { // wholly below the history kept
		if h, ok := pruned.node(id); ok {
			return h, nil
		}
		return chain.Hash{}, errPruned(fmt.Sprintf("accumulator node (level %d, index %d) ends at version", id.Level, id.Index), (id.Index+1)<<id.Level, pruned.Version)
	}
	if id.Level < nodeRunLevel {
		txs, err := readTxs(tx, id.Index<<id.Level, 1<<id.Level)
		if err != nil {
			return chain.Hash{}, err
		}
		return subtreeHash(txs), nil
	}
	last := (id.Index+1)<<id.Level - 1 // the leaf whose append completes the node
	k, v := c.floor(last)
	if k == nil || len(k) != 8 {
		return chain.Hash{}, fmt.Errorf("%w: node run of version %d is missing", ErrCorrupt, last)
	}
	start := binary.BigEndian.Uint64(k)
	// In the tree whose leaves are the subtrees of level nodeRunLevel, the
	// node is at level id.Level-nodeRunLevel, completed by leaf r.
	r := (last+1)>>nodeRunLevel - 1
	at := (nodesBefore(r) - storedBefore(start) + uint64(id.Level-nodeRunLevel)) * chain.HashSize
	if uint64(len(v))%chain.HashSize != 0 || at+chain.HashSize > uint64(len(v)) {
		return chain.Hash{}, fmt.Errorf("%w: %s key %s: node run of %d bytes has no node (%d, %d)",
			ErrCorrupt, bucketNodes, keyString(k), len(v), id.Level, id.Index)
	}
	return chain.Hash(v[at : at+chain.HashSize]), nil
}

// subtreeHash is the root of the perfect subtree of the accumulator whose
// leaves are txs, a power of two of them.
func subtreeHash(txs [][]byte) chain.Hash {
	hs := make([][]byte, len(txs))
	for i, t := range txs {
		h := chain.TxLeafHash(t)
		hs[i] = h[:]
	}
	for len(hs) > 1 {
		for i := range len(hs) / 2 {
			hs[i] = rfc6962.DefaultHasher.HashChildren(hs[2*i], hs[2*i+1])
		}
		hs = hs[:len(hs)/2]
	}
	return chain.Hash(hs[0])
}
