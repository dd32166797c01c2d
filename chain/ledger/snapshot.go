package ledger

import (
	"errors"
	"fmt"
	"slices"

	"github.com/transparency-dev/merkle/compact"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/statetree"
)

// Snapshot sync: a ledger at genesis takes the state of a signed ledger
// info's version V in chunks of leaves (key ranges with range proofs
// against its state_root) instead of replaying the transactions of
// [0, V). Once restored, the ledger is at version V with no history below
// it, as if pruned at V: its accumulator is the frontier of V (which the
// ledger info's executed_state_id verifies), its state tree the one
// restored at V.

// Snapshot chunk limits.
const (
	// MaxSnapshotLeaves caps the leaves of one state chunk.
	MaxSnapshotLeaves = 16384
	// MaxSnapshotBytes caps the keys and values of one state chunk; a
	// chunk always has at least one leaf.
	MaxSnapshotBytes = 4 << 20
)

// Errors of snapshot sync.
var (
	// ErrNotEmpty: a snapshot restore needs a ledger at genesis (or one
	// whose restore is in progress).
	ErrNotEmpty = errors.New("ledger: snapshot restore needs an empty ledger")
	// ErrSnapshotUnsupported: the ledger's storage cannot restore a
	// snapshot (it does not implement [SnapshotStorage]).
	ErrSnapshotUnsupported = errors.New("ledger: storage cannot restore a snapshot")
	// ErrNoSnapshot: no restore of the target is stored to resume, and no
	// frontier was given to begin one.
	ErrNoSnapshot = errors.New("ledger: no snapshot restore to resume")
	// ErrSnapshotFrontier: the accumulator frontier offered with a
	// snapshot does not give the ledger info's executed_state_id (the
	// reason of a [*chain.VerifyError]).
	ErrSnapshotFrontier = errors.New("ledger: snapshot frontier does not give the accumulator root")
)

// SnapshotStorage is a [Storage] that can restore a snapshot: chain/store
// implements it.
type SnapshotStorage interface {
	Storage
	// Snapshot returns the restore in progress, nil if none.
	Snapshot() (*SnapshotProgress, error)
	// PutSnapshot durably stores the tree nodes a restored chunk
	// completed (all of version p's), named by first, the key hash of the
	// chunk's first leaf, with p, the restore's position after the chunk,
	// in one atomic write. A restore of another version in progress is
	// discarded first.
	PutSnapshot(p *SnapshotProgress, first chain.Hash, nodes []statetree.NodeEntry) error
	// FinishSnapshot durably stores the last nodes of the restore p and
	// makes the ledger the snapshot's, in one atomic write: Committed
	// becomes {V, p.Frontier, p.LedgerInfo, TreeVersion V}, the history
	// below V is pruned, and the restore record goes. The storage must
	// hold no transaction.
	FinishSnapshot(p *SnapshotProgress, nodes []statetree.NodeEntry) error
}

// SnapshotProgress is a snapshot restore's durable position.
type SnapshotProgress struct {
	_ struct{} `cbor:",toarray"`
	// LedgerInfo is the signed ledger info restored to; its commit info's
	// version V and state root name the snapshot.
	LedgerInfo *chain.LedgerInfoWithSignatures
	// Frontier is the accumulator's compact range of [0, V), checked
	// against the ledger info's executed_state_id.
	Frontier []chain.Hash
	// Restorer is the tree restorer's position
	// ([statetree.Restorer.MarshalBinary]).
	Restorer []byte
	// Leaves counts the leaves restored so far.
	Leaves uint64
}

// StateChunk is a chunk of the state of a version: leaves in key-hash
// order with the range proof that they are every leaf between the first
// and the last.
type StateChunk struct {
	_      struct{} `cbor:",toarray"`
	Leaves []statetree.KV
	Proof  StateRangeProof
}

// StateRangeProof is a [statetree.RangeProof] as the wire carries it: a
// CBOR array rather than the proof's binary form.
type StateRangeProof struct {
	_                     struct{} `cbor:",toarray"`
	FirstDepth, LastDepth uint16
	Left, Right           []chain.Hash
}

// RangeProof returns p as the state tree's proof.
func (p *StateRangeProof) RangeProof() *statetree.RangeProof {
	return &statetree.RangeProof{FirstDepth: p.FirstDepth, LastDepth: p.LastDepth, Left: p.Left, Right: p.Right}
}

// StateChunk returns the leaves of the state tree of version, in key-hash
// order, from the first whose key hash is at least start: at most
// maxLeaves (and MaxSnapshotLeaves) of them and, past the first, as many
// as MaxSnapshotBytes of keys and values allow, with their range proof;
// nil when no leaf is at or after start. It fails with an error wrapping
// ErrVersionNotAvailable if the tree has not reached version (it follows
// a sync) and statetree.ErrNodeNotFound if the tree of version is not
// stored (never written, as between two steps of a settle, or pruned).
func (l *Ledger) StateChunk(version uint64, start chain.Hash, maxLeaves int) (*StateChunk, error) {
	l.mu.Lock()
	tv, committed := l.treeVersion, l.committed.Version
	l.mu.Unlock()
	if version > tv || version > committed {
		return nil, fmt.Errorf("%w: state tree at version %d, committed version %d, asked %d",
			ErrVersionNotAvailable, tv, committed, version)
	}
	if version == 0 {
		return nil, fmt.Errorf("%w: the state of version 0 is empty", ErrBadRequest)
	}
	n := min(maxLeaves, MaxSnapshotLeaves)
	if n <= 0 {
		return nil, fmt.Errorf("%w: max leaves %d", ErrBadRequest, maxLeaves)
	}
	t := statetree.New(l.st)
	leaves, err := t.Leaves(version, start, n)
	if err != nil {
		return nil, fmt.Errorf("ledger: state chunk of version %d: %w", version, err)
	}
	if len(leaves) == 0 {
		return nil, nil
	}
	c := &StateChunk{Leaves: make([]statetree.KV, 0, len(leaves))}
	size := 0
	for _, lf := range leaves {
		sz := len(lf.Key) + len(lf.Value)
		if len(c.Leaves) > 0 && size+sz > MaxSnapshotBytes {
			break
		}
		size += sz
		c.Leaves = append(c.Leaves, statetree.KV{Key: lf.Key, Value: lf.Value})
	}
	first, last := leaves[0].KeyHash, leaves[len(c.Leaves)-1].KeyHash
	p, err := t.RangeProof(version, first, last)
	if err != nil {
		return nil, fmt.Errorf("ledger: state chunk of version %d: %w", version, err)
	}
	c.Proof = StateRangeProof{FirstDepth: p.FirstDepth, LastDepth: p.LastDepth, Left: p.Left, Right: p.Right}
	return c, nil
}

// FrontierAt returns the accumulator's compact range of [0, version): what
// a snapshot of version needs besides its state. It fails like the
// storage's Nodes for a version past the ledger's or below its history.
func (l *Ledger) FrontierAt(version uint64) ([]chain.Hash, error) {
	if v := l.Version(); version > v {
		return nil, fmt.Errorf("%w: version %d, asked %d", ErrVersionNotAvailable, v, version)
	}
	ids := compact.RangeNodes(0, version, nil)
	hs, err := l.st.Nodes(ids)
	if err != nil {
		return nil, fmt.Errorf("ledger: frontier of version %d: %w", version, err)
	}
	if len(hs) != len(ids) {
		return nil, fmt.Errorf("%w: %d frontier nodes for %d ids", ErrCorrupt, len(hs), len(ids))
	}
	return hs, nil
}

// VerifySnapshotFrontier checks that frontier is the compact range of
// [0, V) whose root is the executed_state_id of info, of version V.
func VerifySnapshotFrontier(frontier []chain.Hash, info chain.BlockInfo) error {
	acc, err := chain.AccumulatorFromFrontier(info.Version, frontier)
	if err != nil {
		return &chain.VerifyError{Reason: ErrSnapshotFrontier, Detail: err.Error()}
	}
	if root := acc.Root(); root != info.ExecutedStateID {
		return &chain.VerifyError{Reason: ErrSnapshotFrontier, Detail: fmt.Sprintf("root %s, executed state %s", root.Short(), info.ExecutedStateID.Short())}
	}
	return nil
}

// SnapshotRestore is a snapshot restore in progress. It is not safe for
// concurrent use; the ledger takes no other write while one is open but
// through it.
type SnapshotRestore struct {
	l      *Ledger
	st     SnapshotStorage
	p      SnapshotProgress
	r      *statetree.Restorer
	closed bool
}

// RestoreSnapshot begins, or resumes, the restore of the state of target
// into a ledger at genesis; frontier is the accumulator's compact range of
// [0, V) for target's version V. A restore of target stored by an earlier
// run resumes where it stopped (frontier may then be nil: without one and
// nothing to resume it fails with ErrNoSnapshot); one of another target
// is discarded when the first chunk of this one is stored. The
// caller has verified target's signatures; RestoreSnapshot verifies
// frontier against target's executed_state_id ([*chain.VerifyError] with
// Reason ErrSnapshotFrontier).
func (l *Ledger) RestoreSnapshot(target *chain.LedgerInfoWithSignatures, frontier []chain.Hash) (*SnapshotRestore, error) {
	st, ok := l.st.(SnapshotStorage)
	if !ok {
		return nil, ErrSnapshotUnsupported
	}
	if target == nil {
		return nil, errors.New("ledger: restore snapshot: nil target")
	}
	info := target.LedgerInfo.CommitInfo
	if info.Version == 0 {
		return nil, fmt.Errorf("%w: target at version 0", ErrBadRequest)
	}
	if v := l.Version(); v != 0 || l.LedgerInfo() != nil {
		return nil, fmt.Errorf("%w: ledger at version %d", ErrNotEmpty, v)
	}
	s := &SnapshotRestore{l: l, st: st}
	old, err := st.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("ledger: restore snapshot: %w", err)
	}
	if old != nil && old.LedgerInfo != nil && old.LedgerInfo.LedgerInfo.CommitInfo == info {
		if s.r, err = statetree.ResumeRestorer(old.Restorer); err != nil {
			return nil, fmt.Errorf("%w: snapshot restore: %w", ErrCorrupt, err)
		}
		if err := VerifySnapshotFrontier(old.Frontier, info); err != nil {
			return nil, fmt.Errorf("%w: stored snapshot frontier: %w", ErrCorrupt, err)
		}
		s.p = *old
		s.p.LedgerInfo = target
		return s, nil
	}
	if frontier == nil {
		return nil, ErrNoSnapshot
	}
	if err := VerifySnapshotFrontier(frontier, info); err != nil {
		return nil, err
	}
	s.r = statetree.NewRestorer(info.Version, info.StateRoot)
	s.p = SnapshotProgress{LedgerInfo: target, Frontier: slices.Clone(frontier)}
	return s, nil
}

// CanRestoreSnapshot reports whether the ledger can restore a snapshot:
// it is at genesis (or restoring one) and its storage can.
func (l *Ledger) CanRestoreSnapshot() bool {
	_, ok := l.st.(SnapshotStorage)
	return ok && l.Version() == 0 && l.LedgerInfo() == nil
}

// Version returns the version of the snapshot.
func (s *SnapshotRestore) Version() uint64 { return s.p.LedgerInfo.LedgerInfo.CommitInfo.Version }

// Leaves returns how many leaves are restored.
func (s *SnapshotRestore) Leaves() uint64 { return s.p.Leaves }

// Next returns the key hash the next chunk starts at (its first leaf's is
// at least it), and false once every leaf is restored.
func (s *SnapshotRestore) Next() (chain.Hash, bool) {
	if s.r.Complete() {
		return chain.Hash{}, false
	}
	last, ok := s.r.Last()
	if !ok {
		return chain.Hash{}, true
	}
	next, carry := last, true
	for i := len(next) - 1; i >= 0 && carry; i-- {
		next[i]++
		carry = next[i] == 0
	}
	if carry { // the last key hash possible was restored: nothing can follow
		return chain.Hash{}, false
	}
	return next, true
}

// Add verifies the next chunk against the snapshot's state root and the
// chunks before it, then durably stores the tree nodes it completes with
// the restore's position. A chunk that fails leaves the restore as it
// was; its error is a [*chain.VerifyError] whose Reason is one of
// statetree's range errors (ErrWrongRoot, ErrGap, ErrOutOfOrder,
// ErrEmptyRange, ErrMalformedProof) for a chunk a peer forged, or a
// storage error.
func (s *SnapshotRestore) Add(c *StateChunk) error {
	if s.closed {
		return errors.New("ledger: snapshot restore is closed")
	}
	if c == nil {
		return &chain.VerifyError{Reason: statetree.ErrEmptyRange, Detail: "no chunk"}
	}
	if len(c.Leaves) > MaxSnapshotLeaves {
		return &chain.VerifyError{Reason: ErrChunkLimits, Detail: fmt.Sprintf("%d leaves", len(c.Leaves))}
	}
	saved, err := s.r.MarshalBinary()
	if err != nil {
		return err
	}
	ls, err := s.r.AddChunk(c.Leaves, c.Proof.RangeProof())
	if err != nil {
		return err
	}
	nodes := s.r.Take()
	p := s.p
	p.Leaves += uint64(len(ls))
	if p.Restorer, err = s.r.MarshalBinary(); err == nil {
		err = s.st.PutSnapshot(&p, ls[0].KeyHash, nodes)
	}
	if err != nil {
		// The chunk is not stored: take the restorer back to before it.
		if r, rerr := statetree.ResumeRestorer(saved); rerr == nil {
			s.r = r
		} else {
			s.closed = true
		}
		return fmt.Errorf("ledger: store snapshot chunk: %w", err)
	}
	s.p = p
	return nil
}

// Complete reports whether every leaf of the snapshot is restored.
func (s *SnapshotRestore) Complete() bool { return s.r.Complete() }

// Finish stores the last nodes of the restored tree and makes the ledger
// the snapshot's: its version, accumulator and committed ledger info are
// the target's, its state tree the restored one, and it has no history
// below. It fails if the snapshot is not complete.
func (s *SnapshotRestore) Finish() error {
	if s.closed {
		return errors.New("ledger: snapshot restore is closed")
	}
	if !s.r.Complete() {
		return fmt.Errorf("ledger: finish snapshot: %d leaves restored, more to come", s.p.Leaves)
	}
	info := s.p.LedgerInfo.LedgerInfo.CommitInfo
	root, nodes := s.r.Finish()
	s.closed = true
	if root != info.StateRoot {
		return fmt.Errorf("%w: restored state root %s, target's %s", ErrCorrupt, root.Short(), info.StateRoot.Short())
	}
	acc, err := chain.AccumulatorFromFrontier(info.Version, s.p.Frontier)
	if err != nil {
		return fmt.Errorf("ledger: finish snapshot: %w", err)
	}
	l := s.l
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if v := l.Version(); v != 0 {
		return fmt.Errorf("%w: ledger at version %d", ErrNotEmpty, v)
	}
	if err := s.st.FinishSnapshot(&s.p, nodes); err != nil {
		return fmt.Errorf("ledger: finish snapshot: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.version, l.treeVersion, l.acc = info.Version, info.Version, acc
	l.li, l.committed = s.p.LedgerInfo, info
	clear(l.results)
	return nil
}
