package ledger

import "errors"

// Errors of the ledger. Chunk verification failures are [*chain.VerifyError]
// values whose Reason is ErrChunkStart, ErrChunkProof or ErrChunkLimits, so a
// syncer can tell a peer's fault (errors.As) from a local one.
var (
	// ErrUnknownParent: the parent of a block to execute is neither the
	// committed block nor an executed, uncommitted block.
	ErrUnknownParent = errors.New("ledger: unknown parent")
	// ErrNotExecuted: a block to commit was not executed (or was forgotten).
	ErrNotExecuted = errors.New("ledger: block not executed")
	// ErrNotChild: the blocks to commit are not a path that starts at a child
	// of the committed block.
	ErrNotChild = errors.New("ledger: block is not a child of the previous one")
	// ErrCommitMismatch: the ledger info to commit does not describe the
	// executed result of the last block (or of the ledger, for FastForward).
	ErrCommitMismatch = errors.New("ledger: commit info does not match execution")
	// ErrSyncing: the ledger is in the middle of a state sync (its version is
	// past its committed block), so it cannot execute or commit blocks until
	// the sync reaches its target.
	ErrSyncing = errors.New("ledger: state sync in progress")
	// ErrVersionNotAvailable: a requested version range is not in the
	// committed ledger.
	ErrVersionNotAvailable = errors.New("ledger: version not available")
	// ErrBadRequest: a chunk request is empty (start >= target or max == 0).
	ErrBadRequest = errors.New("ledger: invalid chunk request")
	// ErrChunkStart: a chunk does not start at the ledger's version.
	ErrChunkStart = errors.New("ledger: chunk does not start at the ledger version")
	// ErrChunkProof: a chunk's transactions and proof do not give the
	// target's accumulator root, or the proof is malformed.
	ErrChunkProof = errors.New("ledger: chunk proof does not verify")
	// ErrChunkLimits: a chunk is empty, too large, runs past its target, or
	// holds a transaction of an invalid size.
	ErrChunkLimits = errors.New("ledger: chunk over limits")
	// ErrPruned: what was asked for is below the first version the
	// storage keeps: it pruned that history.
	ErrPruned = errors.New("ledger: history pruned")
	// ErrCorrupt: the storage holds an inconsistent ledger.
	ErrCorrupt = errors.New("ledger: storage inconsistent")
)
