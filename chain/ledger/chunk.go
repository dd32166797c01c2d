package ledger

import (
	"fmt"
	"math/bits"

	"github.com/transparency-dev/merkle/compact"

	"github.com/p2pnode/p2pnode/chain"
)

// Limits of a chunk. They bound what a peer can make a node allocate and
// hash for one chunk; the wire protocol repeats them.
const (
	// MaxChunkTxs caps the number of transactions of a chunk.
	MaxChunkTxs = 4096
	// MaxChunkBytes caps the summed size of a chunk's transactions.
	MaxChunkBytes = 4 << 20
	// maxRangeNodes caps len(Left) + len(Right): a compact range of [0, e)
	// has at most 64 nodes, one of [b, e) at most 128.
	maxRangeNodes = 3 * 64
	// MaxChunkEncoded caps the encoding of a chunk: the transactions, a
	// 5-byte header per transaction, at most 192 hashes of 34 bytes in Left
	// and Right together, and room for the array and integer headers.
	MaxChunkEncoded = MaxChunkBytes + 5*MaxChunkTxs + (2+chain.HashSize)*maxRangeNodes + 64
	// readBatch is how many transactions GetChunk reads from storage at a
	// time, so that a chunk capped by MaxChunkBytes never reads much more.
	readBatch = 256
)

// Chunk is a run of consecutive committed transactions with the proof that
// they are the transactions of versions [StartVersion, StartVersion+len(Txs))
// of the ledger whose accumulator of size Target has a given root. See the
// package documentation for the proof.
type Chunk struct {
	_ struct{} `cbor:",toarray"`
	// StartVersion is the version of Txs[0].
	StartVersion uint64
	// Target is the size of the accumulator the proof is against.
	Target uint64
	// Txs are the transactions, in order.
	Txs [][]byte
	// Left is the compact range of [0, StartVersion):
	// the hashes of compact.RangeNodes(0, StartVersion), in that order.
	Left []chain.Hash
	// Right is the compact range of [StartVersion+len(Txs), Target).
	Right []chain.Hash
}

// End returns the version after the chunk's last transaction.
func (c *Chunk) End() uint64 { return c.StartVersion + uint64(len(c.Txs)) }

func chunkFail(reason error, format string, args ...any) *chain.VerifyError {
	return &chain.VerifyError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// checkShape checks what can be checked of c without a ledger: limits, sizes
// of transactions, and the number of hashes of Left and Right.
func (c *Chunk) checkShape() error {
	if len(c.Txs) == 0 || len(c.Txs) > MaxChunkTxs {
		return chunkFail(ErrChunkLimits, "%d transactions, want 1 to %d", len(c.Txs), MaxChunkTxs)
	}
	total := 0
	for i, tx := range c.Txs {
		if len(tx) == 0 || len(tx) > chain.MaxTxSize {
			return chunkFail(ErrChunkLimits, "transaction %d has %d bytes, want 1 to %d", i, len(tx), chain.MaxTxSize)
		}
		total += len(tx)
	}
	if total > MaxChunkBytes {
		return chunkFail(ErrChunkLimits, "%d transaction bytes, limit %d", total, MaxChunkBytes)
	}
	end, carry := bits.Add64(c.StartVersion, uint64(len(c.Txs)), 0)
	if carry != 0 || end > c.Target {
		return chunkFail(ErrChunkLimits, "chunk [%d, +%d) runs past target %d", c.StartVersion, len(c.Txs), c.Target)
	}
	if n := compact.RangeSize(0, c.StartVersion); len(c.Left) != n {
		return chunkFail(ErrChunkProof, "left range has %d hashes, want %d", len(c.Left), n)
	}
	if n := compact.RangeSize(end, c.Target); len(c.Right) != n {
		return chunkFail(ErrChunkProof, "right range has %d hashes, want %d", len(c.Right), n)
	}
	return nil
}

// DecodeChunk decodes a chunk of at most MaxChunkEncoded bytes and checks its
// shape: 1 to MaxChunkTxs transactions of 1 to chain.MaxTxSize bytes, at most
// MaxChunkBytes in all, not past Target, and Left and Right of the sizes of
// the compact ranges they stand for. Decoding errors wrap chain.ErrDecode;
// shape errors are [*chain.VerifyError] values.
func DecodeChunk(data []byte) (*Chunk, error) {
	var c Chunk
	if err := chain.Decode(data, MaxChunkEncoded, &c); err != nil {
		return nil, err
	}
	if err := c.checkShape(); err != nil {
		return nil, err
	}
	return &c, nil
}

// VerifyChunk checks that c extends a ledger of version transactions, whose
// accumulator frontier is frontier, towards target: c starts at version
// (ErrChunkStart, soft: the chunk may answer an older request), c.Target is
// target.Version, c is within limits (ErrChunkLimits), c.Left equals
// frontier, and the tree made of c.Left, the leaves of c.Txs and c.Right has
// size target.Version and root target.ExecutedStateID (ErrChunkProof).
// Failures of c are [*chain.VerifyError] values; a frontier of the wrong
// size is a plain error. A syncer that checks a chunk before its turn to be
// applied may pass c.Left and c.StartVersion as frontier and version: that
// checks everything but the link to its own ledger, which ApplyChunk checks.
// It is pure and safe for concurrent use.
func VerifyChunk(c *Chunk, frontier []chain.Hash, version uint64, target chain.BlockInfo) error {
	_, err := verifyChunk(c, frontier, version, target, nil)
	return err
}

// verifyChunk is VerifyChunk; it also returns the frontier after the chunk's
// transactions and, if nodes is not nil, appends to it every accumulator
// node they complete.
func verifyChunk(c *Chunk, frontier []chain.Hash, version uint64, target chain.BlockInfo, nodes *[]Node) ([]chain.Hash, error) {
	if c.StartVersion != version {
		e := chunkFail(ErrChunkStart, "chunk starts at %d, ledger version %d", c.StartVersion, version)
		e.Soft = true
		return nil, e
	}
	if c.Target != target.Version {
		return nil, chunkFail(ErrChunkProof, "chunk proves size %d, target version %d", c.Target, target.Version)
	}
	if err := c.checkShape(); err != nil {
		return nil, err
	}
	// After checkShape, a frontier of the wrong size is a local fault.
	if len(frontier) != len(c.Left) {
		return nil, fmt.Errorf("ledger: frontier of version %d has %d hashes, want %d", version, len(frontier), len(c.Left))
	}
	for i := range frontier {
		if c.Left[i] != frontier[i] {
			return nil, chunkFail(ErrChunkProof, "left range hash %d differs from the ledger's", i)
		}
	}

	f := chain.RangeFactory()
	hs := make([][]byte, len(frontier), len(frontier)+1)
	for i := range frontier {
		hs[i] = frontier[i][:]
	}
	r, err := f.NewRange(0, version, hs)
	if err != nil {
		return nil, fmt.Errorf("ledger: frontier: %w", err)
	}
	leaves := make([]chain.Hash, len(c.Txs))
	var visit compact.VisitFn
	if nodes != nil {
		visit = func(id compact.NodeID, h []byte) { *nodes = append(*nodes, Node{ID: id, Hash: chain.Hash(h)}) }
	}
	for i, tx := range c.Txs {
		leaves[i] = chain.TxLeafHash(tx)
		if err := r.Append(leaves[i][:], visit); err != nil {
			return nil, fmt.Errorf("ledger: append: %w", err)
		}
	}
	after := make([]chain.Hash, len(r.Hashes()))
	for i, h := range r.Hashes() {
		after[i] = chain.Hash(h)
	}

	end := c.End()
	rhs := make([][]byte, len(c.Right))
	for i := range c.Right {
		rhs[i] = c.Right[i][:]
	}
	right, err := f.NewRange(end, c.Target, rhs)
	if err != nil { // checkShape checked the size
		return nil, chunkFail(ErrChunkProof, "right range: %v", err)
	}
	if err := r.AppendRange(right, nil); err != nil {
		return nil, chunkFail(ErrChunkProof, "right range: %v", err)
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		return nil, fmt.Errorf("ledger: root: %w", err)
	}
	if chain.Hash(root) != target.ExecutedStateID {
		return nil, chunkFail(ErrChunkProof, "root %x of size %d, target root %s", root[:4], c.Target, target.ExecutedStateID.Short())
	}
	return after, nil
}

// GetChunk returns the committed transactions of versions [start, end) with
// their proof against the accumulator of size target, where end is at most
// target, start+max, start+MaxChunkTxs, and as far as MaxChunkBytes of
// transactions allow (always at least one transaction). It fails with
// ErrVersionNotAvailable if target is past Version(), with an error
// wrapping ErrPruned if the storage pruned start, and ErrBadRequest if
// start >= target or max == 0. It is safe to call while the ledger commits.
func (l *Ledger) GetChunk(start, target, max uint64) (*Chunk, error) {
	if start >= target || max == 0 {
		return nil, fmt.Errorf("%w: start %d target %d max %d", ErrBadRequest, start, target, max)
	}
	if v := l.Version(); target > v {
		return nil, fmt.Errorf("%w: target %d, version %d", ErrVersionNotAvailable, target, v)
	}
	// The storage only grows at the top, so [0, target) stays readable
	// from here on unless a prune deletes its start (ErrPruned).
	n := min(target-start, max, MaxChunkTxs)
	txs := make([][]byte, 0, n)
	size := 0
	for uint64(len(txs)) < n && size < MaxChunkBytes {
		at := start + uint64(len(txs))
		got, err := l.st.Txs(at, min(n-uint64(len(txs)), readBatch))
		if err != nil {
			return nil, fmt.Errorf("ledger: read transactions at %d: %w", at, err)
		}
		if len(got) == 0 {
			return nil, fmt.Errorf("%w: no transaction at %d", ErrCorrupt, at)
		}
		for _, tx := range got {
			if len(txs) > 0 && size+len(tx) > MaxChunkBytes {
				size = MaxChunkBytes
				break
			}
			txs = append(txs, tx)
			size += len(tx)
		}
	}
	end := start + uint64(len(txs))
	ids := compact.RangeNodes(0, start, make([]compact.NodeID, 0, maxRangeNodes))
	nl := len(ids)
	ids = compact.RangeNodes(end, target, ids)
	hs, err := l.st.Nodes(ids)
	if err != nil {
		return nil, fmt.Errorf("ledger: read proof nodes: %w", err)
	}
	if len(hs) != len(ids) {
		return nil, fmt.Errorf("%w: %d proof nodes for %d ids", ErrCorrupt, len(hs), len(ids))
	}
	return &Chunk{StartVersion: start, Target: target, Txs: txs, Left: hs[:nl:nl], Right: hs[nl:]}, nil
}

// ApplyChunk verifies c against the ledger and target, then appends its
// transactions to the durable ledger in one Batch. The caller has verified
// target's signatures (chain.Verifier.VerifyLedgerInfo); ApplyChunk verifies
// everything else before it writes (see [VerifyChunk]) and returns its
// failures as [*chain.VerifyError] values. When c reaches target's version
// the Batch also carries target, which becomes the committed ledger info:
// Committed() is then target's commit info. Every speculative result is
// dropped. On error the ledger is unchanged.
func (l *Ledger) ApplyChunk(c *Chunk, target *chain.LedgerInfoWithSignatures) error {
	if c == nil || target == nil {
		return fmt.Errorf("ledger: apply chunk: nil chunk or target")
	}
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	version, frontier := l.Frontier()

	info := target.LedgerInfo.CommitInfo
	nodes := make([]Node, 0, 2*len(c.Txs)+1)
	after, err := verifyChunk(c, frontier, version, info, &nodes)
	if err != nil {
		return err
	}
	batch := &Batch{
		StartVersion: version,
		Txs:          c.Txs,
		Nodes:        nodes,
		Writes:       stateWrites(version, c.Txs),
		Frontier:     after,
	}
	end := c.End()
	if end == info.Version {
		batch.LedgerInfo = target
	}
	acc, err := chain.AccumulatorFromFrontier(end, after)
	if err != nil {
		return fmt.Errorf("ledger: apply chunk: %w", err)
	}
	if err := l.st.Commit(batch); err != nil {
		return fmt.Errorf("ledger: apply chunk: %w", err)
	}

	l.mu.Lock()
	l.version, l.acc = end, acc
	if batch.LedgerInfo != nil {
		l.li, l.committed = target, info
	}
	clear(l.results)
	l.mu.Unlock()
	return nil
}

// FastForward makes target the committed ledger info of a ledger that holds
// exactly target's transactions already: the end of a state sync whose last
// blocks carry no transaction, where no chunk is left to apply. It fails
// with ErrVersionNotAvailable if Version() is not target's version, and with
// ErrCommitMismatch if the ledger's root is not target's or target's round is
// not above the committed one (unless target commits the committed block:
// then it is a no-op). The caller has
// verified target's signatures. Every speculative result is dropped.
func (l *Ledger) FastForward(target *chain.LedgerInfoWithSignatures) error {
	if target == nil {
		return fmt.Errorf("ledger: fast forward: nil target")
	}
	info := target.LedgerInfo.CommitInfo
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	version, frontier := l.Frontier()
	if version != info.Version {
		return fmt.Errorf("%w: version %d, target version %d", ErrVersionNotAvailable, version, info.Version)
	}
	if root := l.Root(); root != info.ExecutedStateID {
		return fmt.Errorf("%w: root %s, target root %s", ErrCommitMismatch, root.Short(), info.ExecutedStateID.Short())
	}
	switch committed := l.Committed(); {
	case committed == info:
		return nil
	case info.Round <= committed.Round:
		return fmt.Errorf("%w: target round %d, committed round %d", ErrCommitMismatch, info.Round, committed.Round)
	}
	if err := l.st.Commit(&Batch{StartVersion: version, Frontier: frontier, LedgerInfo: target}); err != nil {
		return fmt.Errorf("ledger: fast forward: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.li, l.committed = target, info
	clear(l.results)
	return nil
}
