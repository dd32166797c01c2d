package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/chain/statetree"
	"github.com/p2pnode/p2pnode/protocol"
)

// Files of the state snapshot of a chain, in their cache directory.
const (
	stateFile = "state.cbor" // framed encoded StateResponses, one per chunk
	// stateIndexFile holds a header (target version 8, state root 32,
	// leaves 8, bytes of keys and values 8) then, per chunk, its start
	// (32), leaves (4), offset (8) and length (4), big endian, and last an
	// entry of no leaves: the start past the last leaf (absent if its key
	// hash is the last possible). Written last: its presence marks a
	// complete snapshot.
	stateIndexFile      = "state.idx"
	snapshotIndexHeader = 8 + chain.HashSize + 8 + 8
	snapshotIndexEntry  = chain.HashSize + 4 + 8 + 4
	// snapshotLayout names the files' layout in the cache key.
	snapshotLayout = 1
)

// snapshotChunk is where the answer to one planned state request is.
type snapshotChunk struct {
	start  chain.Hash
	leaves int
	off    int64
	n      int
}

// snapshotFile holds the framed responses to the state requests a fresh
// node makes when it restores the snapshot of the chain's committed
// version: chunks of chunkLeaves leaves, the first from the zero key hash
// with the accumulator frontier, each next one from the successor of the
// last key hash of the one before, as the syncer asks them. The syncer
// asks for the chunk after the last one too, before it verifies the last
// and learns the state is complete: the answer is a success with no
// chunk, as ledger.Ledger.StateChunk gives there. The servers
// answer from it with pread, as they do blocks: serving costs page cache,
// not resident memory, and no tree walk or proof. It is safe for
// concurrent use.
type snapshotFile struct {
	f           *os.File
	target      uint64     // the version the snapshot is of
	root        chain.Hash // its state root
	leaves      uint64     // leaves of the state
	kvBytes     uint64     // bytes of their keys and values
	chunkLeaves int        // leaves a planned request asks for
	chunks      []snapshotChunk
	byStart     map[chain.Hash]int
	end         chain.Hash // the start past the last leaf
	hasEnd      bool
}

// snapshotDir returns the cache directory of the snapshot of cfg's chain
// in chunks of chunkLeaves leaves.
func snapshotDir(cfg *Config, chunkLeaves int) string {
	return chainDir(cfg) + fmt.Sprintf("-snapshot-l%d-c%d", snapshotLayout, chunkLeaves)
}

// openSnapshot opens the snapshot file of c's committed state for
// requests of chunkLeaves leaves, building it first if the cache does not
// hold it.
func openSnapshot(ctx context.Context, cfg *Config, c *chainFile, chunkLeaves int, progress io.Writer) (*snapshotFile, error) {
	dir := snapshotDir(cfg, chunkLeaves)
	if _, err := os.Stat(filepath.Join(dir, stateIndexFile)); errors.Is(err, fs.ErrNotExist) {
		if err := buildSnapshot(ctx, c, chunkLeaves, dir, progress); err != nil {
			return nil, err
		}
		// The build held the whole state: give it back before anything
		// is measured.
		runtime.GC()
		debug.FreeOSMemory()
	} else if err != nil {
		return nil, fmt.Errorf("bench: snapshot cache: %w", err)
	} else {
		fmt.Fprintf(progress, "snapshot: cached in %s\n", dir)
	}
	s, err := loadSnapshot(dir, chunkLeaves)
	if err != nil {
		return nil, err
	}
	if info := c.CommittedInfo(); s.target != info.Version || s.root != info.StateRoot {
		s.Close()
		return nil, fmt.Errorf("bench: snapshot cache %s is of version %d root %s, the chain commits version %d root %s",
			dir, s.target, s.root.Short(), info.Version, info.StateRoot.Short())
	}
	return s, nil
}

// buildSnapshot writes the snapshot of c's committed state to dir, built
// in a temporary directory beside it and renamed, so dir is complete or
// absent.
func buildSnapshot(ctx context.Context, c *chainFile, chunkLeaves int, dir string, progress io.Writer) error {
	return buildCached(dir, stateIndexFile, "snapshot", func(tmp string) error {
		return writeSnapshot(ctx, c, chunkLeaves, tmp, progress)
	})
}

// stateSlot is where a key and its value are in a stateArena.
type stateSlot struct {
	off        uint64
	klen, vlen uint32
}

// stateArena is the state a chain writes, key -> last value written,
// with the keys and values in one byte slab: a value overwritten by one of
// the same length (every value, in a bench chain) takes its place, so the
// memory is the state's, not the history's.
type stateArena struct {
	index map[string]uint32 // key -> slot
	slots []stateSlot
	data  []byte
}

func (a *stateArena) put(key, value []byte) {
	if i, ok := a.index[string(key)]; ok {
		s := &a.slots[i]
		if int(s.vlen) == len(value) {
			copy(a.data[s.off+uint64(s.klen):], value)
			return
		}
		// Another length: a fresh copy, the old one left unused.
		s.off, s.vlen = uint64(len(a.data)), uint32(len(value))
		a.data = append(append(a.data, key...), value...)
		return
	}
	a.index[string(key)] = uint32(len(a.slots))
	a.slots = append(a.slots, stateSlot{off: uint64(len(a.data)), klen: uint32(len(key)), vlen: uint32(len(value))})
	a.data = append(append(a.data, key...), value...)
}

func (a *stateArena) key(s stateSlot) []byte {
	return a.data[s.off : s.off+uint64(s.klen) : s.off+uint64(s.klen)]
}

func (a *stateArena) value(s stateSlot) []byte {
	from := s.off + uint64(s.klen)
	return a.data[from : from+uint64(s.vlen) : from+uint64(s.vlen)]
}

// stateLeaf is a leaf of the state tree: its key hash, its hash, and its
// key and value in the arena.
type stateLeaf struct {
	kh, lh chain.Hash
	slot   stateSlot
}

// readState replays the key/value writes of c's blocks up to the
// committed one, and the transactions into an accumulator: the state and
// the frontier of the committed version.
func readState(ctx context.Context, c *chainFile) (*stateArena, *chain.Accumulator, error) {
	info := c.CommittedInfo()
	top, ok := c.byID[info.ID]
	if !ok {
		return nil, nil, fmt.Errorf("bench: the committed block %s is not in the chain file", info.ID.Short())
	}
	const batch = 256
	// Blocks are read and decoded on one goroutine, replayed on another.
	decoded := make(chan []*chain.Block, 2)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var readErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(decoded)
		for from := 1; from <= top; from += batch {
			bs, err := c.Blocks(from, min(from+batch-1, top))
			if err != nil {
				readErr = err
				return
			}
			select {
			case decoded <- bs:
			case <-cctx.Done():
				return
			}
		}
	})
	a := &stateArena{index: make(map[string]uint32)}
	acc := chain.NewAccumulator()
	for bs := range decoded {
		if err := ctx.Err(); err != nil {
			cancel()
			break
		}
		for _, b := range bs {
			for _, tx := range b.Payload() {
				acc.Append(tx)
				if k, v, err := chain.DecodeKV(tx); err == nil {
					a.put(k, v)
				}
			}
		}
	}
	cancel()
	wg.Wait()
	if err := errors.Join(readErr, ctx.Err()); err != nil {
		return nil, nil, err
	}
	if acc.Size() != info.Version {
		return nil, nil, fmt.Errorf("bench: the chain's blocks up to the committed one hold %d transactions, its info says %d", acc.Size(), info.Version)
	}
	return a, acc, nil
}

// sortedLeaves hashes the state's leaves, on every core, and sorts them
// by key hash: the order of the tree's leaves.
func sortedLeaves(a *stateArena) []stateLeaf {
	leaves := make([]stateLeaf, len(a.slots))
	workers := runtime.GOMAXPROCS(0)
	size := (len(leaves) + workers - 1) / workers
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := min(w*size, len(leaves)), min((w+1)*size, len(leaves))
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				s := a.slots[i]
				kh := statetree.KeyHash(a.key(s))
				leaves[i] = stateLeaf{kh: kh, lh: statetree.LeafHash(kh, statetree.ValueHash(a.value(s))), slot: s}
			}
		})
	}
	wg.Wait()
	slices.SortFunc(leaves, func(x, y stateLeaf) int { return bytes.Compare(x.kh[:], y.kh[:]) })
	return leaves
}

// planChunks cuts the sorted leaves into the chunks a state server
// answers requests of chunkLeaves leaves with (ledger.Ledger.StateChunk):
// at most chunkLeaves and ledger.MaxSnapshotLeaves leaves each and, past
// the first, no more than ledger.MaxSnapshotBytes of keys and values. It
// returns each chunk's first leaf index, and len(leaves) last.
func planChunks(leaves []stateLeaf, chunkLeaves int) []int {
	n := min(chunkLeaves, ledger.MaxSnapshotLeaves)
	bounds := []int{0}
	for lo := 0; lo < len(leaves); {
		hi, size := lo, 0
		for hi < len(leaves) && hi-lo < n {
			sz := int(leaves[hi].slot.klen + leaves[hi].slot.vlen)
			if hi > lo && size+sz > ledger.MaxSnapshotBytes {
				break
			}
			size += sz
			hi++
		}
		bounds = append(bounds, hi)
		lo = hi
	}
	return bounds
}

// proofTagged is a sibling of a range proof with its depth.
type proofTagged struct {
	depth int
	hash  chain.Hash
}

// rangeProver computes the root of the tree of sorted leaves and the
// range proofs of chunks of them in one pass over the tree, instead of a
// tree built in memory and walked for each proof: a subtree's hash is the
// left sibling of every chunk whose first leaf is in its right neighbour,
// and the right sibling of every chunk whose last leaf is in its left one.
type rangeProver struct {
	leaves       []stateLeaf
	firsts       []int // the chunks' first leaf indexes, rising
	lasts        []int // their last ones
	firstDepth   []int
	lastDepth    []int
	left, right  [][]proofTagged
	chunkOfFirst map[int]int
	chunkOfLast  map[int]int
}

func newRangeProver(leaves []stateLeaf, bounds []int) *rangeProver {
	k := len(bounds) - 1
	p := &rangeProver{
		leaves: leaves, firstDepth: make([]int, k), lastDepth: make([]int, k),
		left: make([][]proofTagged, k), right: make([][]proofTagged, k),
		chunkOfFirst: make(map[int]int, k), chunkOfLast: make(map[int]int, k),
	}
	for i := range k {
		p.firsts = append(p.firsts, bounds[i])
		p.lasts = append(p.lasts, bounds[i+1]-1)
		p.chunkOfFirst[bounds[i]] = i
		p.chunkOfLast[bounds[i+1]-1] = i
	}
	return p
}

// bitAt returns bit d of h, from the most significant bit of h[0], as
// the tree's paths read it.
func bitAt(h *chain.Hash, d int) byte { return h[d>>3] >> (7 - uint(d&7)) & 1 }

// inRange returns the indexes of xs (rising) in [lo, hi).
func inRange(xs []int, lo, hi int) []int {
	a := sort.SearchInts(xs, lo)
	b := sort.SearchInts(xs, hi)
	return xs[a:b]
}

// node returns the hash of the subtree at depth d holding the leaves
// [lo, hi), which share their first d bits, and records the siblings and
// depths of the chunks' end leaves in it.
func (p *rangeProver) node(d, lo, hi int) (chain.Hash, error) {
	switch {
	case hi == lo:
		return statetree.Placeholder, nil
	case hi-lo == 1:
		if i, ok := p.chunkOfFirst[lo]; ok {
			p.firstDepth[i] = d
		}
		if i, ok := p.chunkOfLast[lo]; ok {
			p.lastDepth[i] = d
		}
		return p.leaves[lo].lh, nil
	case d >= statetree.MaxDepth:
		return chain.Hash{}, fmt.Errorf("bench: two leaves of key hash %s", p.leaves[lo].kh.Short())
	}
	// The leaves going right at depth d follow those going left.
	m := lo + sort.Search(hi-lo, func(i int) bool { return bitAt(&p.leaves[lo+i].kh, d) == 1 })
	h0, err := p.node(d+1, lo, m)
	if err != nil {
		return chain.Hash{}, err
	}
	h1, err := p.node(d+1, m, hi)
	if err != nil {
		return chain.Hash{}, err
	}
	for _, f := range inRange(p.firsts, m, hi) {
		i := p.chunkOfFirst[f]
		p.left[i] = append(p.left[i], proofTagged{d, h0})
	}
	for _, l := range inRange(p.lasts, lo, m) {
		i := p.chunkOfLast[l]
		p.right[i] = append(p.right[i], proofTagged{d, h1})
	}
	return statetree.NodeHash(h0, h1), nil
}

// proof returns chunk i's range proof, its siblings top down.
func (p *rangeProver) proof(i int) ledger.StateRangeProof {
	hashes := func(ts []proofTagged) []chain.Hash {
		slices.SortFunc(ts, func(a, b proofTagged) int { return a.depth - b.depth })
		out := make([]chain.Hash, len(ts))
		for j, t := range ts {
			out[j] = t.hash
		}
		return out
	}
	return ledger.StateRangeProof{
		FirstDepth: uint16(p.firstDepth[i]), LastDepth: uint16(p.lastDepth[i]),
		Left: hashes(p.left[i]), Right: hashes(p.right[i]),
	}
}

// writeSnapshot computes the state of c's committed version, writes its
// chunks with their range proofs (the first with the accumulator's
// frontier) and the index to dir, and checks every chunk as a restoring
// client does, the root against the chain's committed state root.
func writeSnapshot(ctx context.Context, c *chainFile, chunkLeaves int, dir string, progress io.Writer) error {
	info := c.CommittedInfo()
	began := time.Now()
	fmt.Fprintf(progress, "snapshot: reading the state of version %d from the chain\n", info.Version)
	a, acc, err := readState(ctx, c)
	if err != nil {
		return err
	}
	frontier := acc.Frontier()
	if err := ledger.VerifySnapshotFrontier(frontier, info); err != nil {
		return fmt.Errorf("bench: snapshot frontier: %w", err)
	}
	a.index = nil // the slots and data stay: the leaves point into them
	leaves := sortedLeaves(a)
	a.slots = nil
	if len(leaves) == 0 {
		return fmt.Errorf("bench: the state of version %d is empty: no snapshot to sync", info.Version)
	}
	bounds := planChunks(leaves, chunkLeaves)
	p := newRangeProver(leaves, bounds)
	root, err := p.node(0, 0, len(leaves))
	if err != nil {
		return err
	}
	if root != info.StateRoot {
		return fmt.Errorf("bench: the state read from the chain has root %s, the chain commits state root %s at version %d",
			root.Short(), info.StateRoot.Short(), info.Version)
	}
	fmt.Fprintf(progress, "snapshot: %d leaves, root checked, in %v; writing %d chunks\n",
		len(leaves), time.Since(began).Round(time.Millisecond), len(bounds)-1)

	f, err := os.Create(filepath.Join(dir, stateFile))
	if err != nil {
		return fmt.Errorf("bench: snapshot cache: %w", err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	var kvBytes uint64
	for _, l := range leaves {
		kvBytes += uint64(l.slot.klen + l.slot.vlen)
	}
	idx := binary.BigEndian.AppendUint64(nil, info.Version)
	idx = append(idx, info.StateRoot[:]...)
	idx = binary.BigEndian.AppendUint64(idx, uint64(len(leaves)))
	idx = binary.BigEndian.AppendUint64(idx, kvBytes)
	check := statetree.NewRestorer(info.Version, info.StateRoot)
	var off int64
	var start chain.Hash
	for i := range len(bounds) - 1 {
		if err := ctx.Err(); err != nil {
			return err
		}
		lo, hi := bounds[i], bounds[i+1]
		chunk := &ledger.StateChunk{Leaves: make([]statetree.KV, 0, hi-lo), Proof: p.proof(i)}
		for _, l := range leaves[lo:hi] {
			chunk.Leaves = append(chunk.Leaves, statetree.KV{Key: a.key(l.slot), Value: a.value(l.slot)})
		}
		// As a client restoring the snapshot: each chunk verified against
		// the root and the chunks before it.
		if _, err := check.AddChunk(chunk.Leaves, chunk.Proof.RangeProof()); err != nil {
			return fmt.Errorf("bench: snapshot chunk %d does not verify: %w", i, err)
		}
		check.Take()
		resp := &protocol.StateResponse{Status: protocol.StatusSucceeded, Chunk: chunk}
		if i == 0 {
			resp.Frontier = frontier
		}
		body, err := chain.Encode(resp)
		if err != nil {
			return err
		}
		if len(body) > protocol.MaxStateResponseSize {
			return fmt.Errorf("bench: snapshot chunk %d of %d bytes, over the limit %d", i, len(body), protocol.MaxStateResponseSize)
		}
		frame := binary.AppendUvarint(make([]byte, 0, len(body)+binary.MaxVarintLen64), uint64(len(body)))
		frame = append(frame, body...)
		if _, err := w.Write(frame); err != nil {
			return fmt.Errorf("bench: write snapshot: %w", err)
		}
		idx = append(idx, start[:]...)
		idx = binary.BigEndian.AppendUint32(idx, uint32(hi-lo))
		idx = binary.BigEndian.AppendUint64(idx, uint64(off))
		idx = binary.BigEndian.AppendUint32(idx, uint32(len(frame)))
		off += int64(len(frame))
		// The client asks the next chunk from right after this one's
		// last key hash.
		var ok bool
		if start, ok = successorHash(leaves[hi-1].kh); !ok && hi < len(leaves) {
			return errors.New("bench: a leaf after the last key hash")
		}
		if !ok {
			break
		}
		if hi == len(leaves) {
			// Past the last leaf: a request the syncer makes.
			idx = append(idx, start[:]...)
			idx = append(idx, make([]byte, 16)...)
		}
	}
	if !check.Complete() {
		return errors.New("bench: the snapshot's chunks verify but do not complete the tree")
	}
	if got, _ := check.Finish(); got != info.StateRoot {
		return fmt.Errorf("bench: the snapshot restores root %s, want %s", got.Short(), info.StateRoot.Short())
	}
	// Synced before the run measures anything: its fsyncs would wait for
	// the write-back of these pages otherwise.
	if err := errors.Join(w.Flush(), f.Sync()); err != nil {
		return fmt.Errorf("bench: write snapshot: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, stateIndexFile), idx, 0o644); err != nil {
		return fmt.Errorf("bench: write snapshot: %w", err)
	}
	fmt.Fprintf(progress, "snapshot: %d chunks (%.1f MB) in %v\n", len(bounds)-1, float64(off)/1e6, time.Since(began).Round(time.Millisecond))
	return nil
}

// successorHash returns the key hash right after h, false if h is the
// last.
func successorHash(h chain.Hash) (chain.Hash, bool) {
	for i := len(h) - 1; i >= 0; i-- {
		h[i]++
		if h[i] != 0 {
			return h, true
		}
	}
	return h, false
}

// loadSnapshot opens the snapshot file in dir, of chunks of chunkLeaves.
func loadSnapshot(dir string, chunkLeaves int) (*snapshotFile, error) {
	idx, err := os.ReadFile(filepath.Join(dir, stateIndexFile))
	if err != nil {
		return nil, fmt.Errorf("bench: snapshot cache: %w", err)
	}
	if len(idx) < snapshotIndexHeader || (len(idx)-snapshotIndexHeader)%snapshotIndexEntry != 0 {
		return nil, fmt.Errorf("bench: snapshot cache index of %d bytes", len(idx))
	}
	f, err := os.Open(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, fmt.Errorf("bench: snapshot cache: %w", err)
	}
	s := &snapshotFile{
		f: f, chunkLeaves: chunkLeaves,
		target: binary.BigEndian.Uint64(idx), root: chain.Hash(idx[8 : 8+chain.HashSize]),
		leaves: binary.BigEndian.Uint64(idx[8+chain.HashSize:]), kvBytes: binary.BigEndian.Uint64(idx[16+chain.HashSize:]),
		byStart: make(map[chain.Hash]int),
	}
	for e := idx[snapshotIndexHeader:]; len(e) > 0; e = e[snapshotIndexEntry:] {
		ch := snapshotChunk{
			start:  chain.Hash(e[:chain.HashSize]),
			leaves: int(binary.BigEndian.Uint32(e[chain.HashSize:])),
			off:    int64(binary.BigEndian.Uint64(e[chain.HashSize+4:])),
			n:      int(binary.BigEndian.Uint32(e[chain.HashSize+12:])),
		}
		if ch.leaves == 0 {
			s.end, s.hasEnd = ch.start, true
			continue
		}
		s.byStart[ch.start] = len(s.chunks)
		s.chunks = append(s.chunks, ch)
	}
	return s, nil
}

// Close closes the snapshot file.
func (s *snapshotFile) Close() error { return s.f.Close() }

// frame reads the framed response of chunk i.
func (s *snapshotFile) frame(i int) ([]byte, error) {
	ch := s.chunks[i]
	buf := make([]byte, ch.n)
	if _, err := s.f.ReadAt(buf, ch.off); err != nil {
		return nil, fmt.Errorf("bench: read snapshot chunk %d: %w", i, err)
	}
	return buf, nil
}

// plan returns the chunk req asks for, false if it is none of the
// planned requests: of the snapshot's version, chunkLeaves leaves, from a
// chunk's start, the frontier asked with the first chunk only.
func (s *snapshotFile) plan(req *protocol.StateRequest) (int, bool) {
	i, ok := s.byStart[req.Start]
	ok = ok && req.Version == s.target && int(req.MaxLeaves) == s.chunkLeaves && req.WithFrontier == (i == 0)
	return i, ok
}

// pastEnd reports whether req is the planned request past the last
// leaf.
func (s *snapshotFile) pastEnd(req *protocol.StateRequest) bool {
	return s.hasEnd && req.Start == s.end && req.Version == s.target && int(req.MaxLeaves) == s.chunkLeaves && !req.WithFrontier
}

// response returns the framed response to req, and false if the file
// does not hold it: the response is then StatusBusy (StatusBadRequest for
// an invalid request) and the client asks another server.
func (s *snapshotFile) response(req *protocol.StateRequest) ([]byte, bool, error) {
	status, hit := protocol.StatusBadRequest, false
	if req.Validate() == nil {
		if i, ok := s.plan(req); ok {
			frame, err := s.frame(i)
			return frame, err == nil, err
		}
		status, hit = protocol.StatusBusy, false
		if s.pastEnd(req) {
			status, hit = protocol.StatusSucceeded, true // no leaf at or after the start
		}
	}
	body, err := chain.Encode(&protocol.StateResponse{Status: status})
	if err != nil {
		return nil, false, err
	}
	return append(binary.AppendUvarint(nil, uint64(len(body))), body...), hit, nil
}

// decode decodes the response of chunk i, as a client decodes it.
func (s *snapshotFile) decode(i int) (*protocol.StateResponse, error) {
	frame, err := s.frame(i)
	if err != nil {
		return nil, err
	}
	_, n := binary.Uvarint(frame)
	var resp protocol.StateResponse
	if err := chain.Decode(frame[n:], protocol.MaxStateResponseSize, &resp); err != nil {
		return nil, fmt.Errorf("bench: snapshot chunk %d: %w", i, err)
	}
	if resp.Chunk == nil {
		return nil, fmt.Errorf("bench: snapshot chunk %d has no leaves", i)
	}
	return &resp, nil
}
