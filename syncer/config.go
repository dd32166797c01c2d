package syncer

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/p2pnode/p2pnode/chain/ledger"
)

// Config tunes the sync manager. The zero value is not valid; start from
// [DefaultConfig] (everything this package does beyond the seed switched on)
// or [SeedConfig] (the seed's behaviour exactly) and change fields.
type Config struct {
	// BlocksPerRequest is how many blocks one retrieval request asks for:
	// the certified block and up to BlocksPerRequest-1 of its ancestors, the
	// server stopping early at the local root. 1 is the seed's behaviour.
	BlocksPerRequest int
	// AttemptTimeout is the timeout of a first retrieval attempt; attempt k
	// gets AttemptTimeout·2^(k-1), at most MaxAttemptTimeout and never past
	// the sync's deadline.
	//
	// To that base a request adds the time its bytes take at the peer's
	// measured delivery rate (see InitialPeerThroughput), so that a large
	// response from a slow honest peer is not cut short; the sum is at
	// most MaxResponseTimeout.
	AttemptTimeout    time.Duration
	MaxAttemptTimeout time.Duration
	// AdaptiveFlow sizes each request's timeout to its expected bytes and
	// the peer's measured rate, tells a slow peer (one that delivered other
	// answers while the request was out) from a stalled one, penalising
	// only the latter, and adapts the forward fetch's requests in flight
	// per peer. false keeps the seed's fixed timeouts.
	AdaptiveFlow bool
	// InitialPeerThroughput is the delivery rate, in bytes/s, assumed of a
	// peer not measured yet when sizing a request's timeout.
	InitialPeerThroughput int
	// MaxResponseTimeout caps a request's timeout, base and transfer time
	// together: how long a stalled peer can hold a request.
	MaxResponseTimeout time.Duration
	// MaxPeerRequests caps the requests of a forward fetch in flight at one
	// peer; within it each peer's window adapts (AIMD: one more request
	// after an answer that found the window full, half after a timeout),
	// starting at 2.
	MaxPeerRequests int
	// HedgeDelay, if positive, is how long a retrieval waits for the current
	// peer before it also asks the next candidate; the first valid answer
	// wins and the others are cancelled. 0 asks one peer at a time, as the
	// seed does.
	HedgeDelay time.Duration
	// MaxParallelAttempts caps the attempts of one retrieval in flight at
	// once when hedging.
	MaxParallelAttempts int
	// RankPeers orders the QC signers after the preferred peer by their
	// score (validity and latency) instead of at random as the seed does.
	RankPeers bool
	// FallbackToPeers lets a retrieval ask connected peers that did not sign
	// the QC once every signer failed (useful for full nodes, whose peers
	// are mostly other full nodes).
	FallbackToPeers bool
	// FastForwardRounds: a sync fast-forwards by state sync when the block
	// committed by the peer's highest ledger info is unknown and its round
	// is more than FastForwardRounds past the local root. 0 fast-forwards
	// whenever that block is unknown and ahead, as the seed does.
	FastForwardRounds uint64
	// MaxPendingBytes bounds the blocks a fetch holds in memory while it
	// walks back to a known ancestor; a walk that would pass it stops with
	// ErrTooFarBehind (the caller fast-forwards instead).
	MaxPendingBytes int
	// ForwardMinGap: a sync first fetches the committed chain forward, in
	// windows of BlocksPerRequest rounds asked of several peers at once,
	// when the block committed by the peer's highest ledger info is unknown
	// and its round is more than ForwardMinGap past the local root (and no
	// fast-forward took the node there). 0 never does: the blocks are then
	// fetched walking back from the QC, as the seed does.
	ForwardMinGap uint64
	// ForwardWindows caps the windows of a forward fetch whose blocks are
	// still to come; as many again may wait, complete, for the windows
	// before them (the windows of the insert in progress, at most 256
	// blocks, come on top). With BlocksPerRequest and ForwardMaxBytes it
	// bounds the blocks held in memory whatever the gap.
	ForwardWindows int
	// ForwardRequestBytes: with AdaptiveFlow, a forward window spans fewer
	// than BlocksPerRequest rounds when the blocks seen so far are large,
	// so that one answer carries about this many bytes.
	ForwardRequestBytes int
	// ForwardMaxBytes bounds the bytes of blocks the open windows of a
	// forward fetch are expected to hold (from the blocks seen so far); no
	// window opens past it, but one always may.
	ForwardMaxBytes int
	// ChunkTxs is how many transactions one state-sync chunk request asks
	// for.
	ChunkTxs int
	// ChunksInFlight caps the chunk requests of a state sync in flight at
	// once, across all peers; with ChunkTxs it bounds state sync's memory
	// whatever the gap. 1 fetches one chunk at a time.
	ChunksInFlight int
	// SnapshotSync: a fast-forward of a ledger at genesis restores the
	// state of the target's version from verified state chunks (key
	// ranges with range proofs against its state_root) instead of
	// replaying every transaction since genesis, so that joining costs
	// the size of the state, not the length of the history. A ledger that
	// holds transactions, or whose storage cannot restore a snapshot,
	// replays the ones it lacks. false always replays.
	SnapshotSync bool
	// StateChunkLeaves is how many leaves one state chunk request asks
	// for (at most ledger.MaxSnapshotLeaves; servers also stop at
	// ledger.MaxSnapshotBytes).
	StateChunkLeaves int
	// ChunkTimeout is the timeout of one chunk request; with AdaptiveFlow
	// the transfer time of the chunk's bytes at the peer's measured rate
	// is added to it, as for blocks.
	ChunkTimeout time.Duration
	// ProgressInterval is how often a running state sync logs its progress
	// at Info level.
	ProgressInterval time.Duration
	// ScoreHalfLife is how fast peers' penalties decay.
	ScoreHalfLife time.Duration
	// Seed seeds the random choice among peers.
	Seed uint64
	// Logger receives the syncer's logs; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the configuration of a production node.
func DefaultConfig() Config {
	return Config{
		BlocksPerRequest:      64,
		AttemptTimeout:        2 * time.Second,
		MaxAttemptTimeout:     10 * time.Second,
		AdaptiveFlow:          true,
		InitialPeerThroughput: 1 << 20,
		MaxResponseTimeout:    60 * time.Second,
		MaxPeerRequests:       8,
		HedgeDelay:            500 * time.Millisecond,
		MaxParallelAttempts:   3,
		RankPeers:             true,
		FallbackToPeers:       true,
		FastForwardRounds:     200,
		MaxPendingBytes:       256 << 20,
		ForwardMinGap:         2 * 64,
		ForwardWindows:        8,
		ForwardRequestBytes:   8 << 20,
		ForwardMaxBytes:       128 << 20,
		ChunkTxs:              2000,
		ChunksInFlight:        8,
		ChunkTimeout:          10 * time.Second,
		SnapshotSync:          true,
		StateChunkLeaves:      4096,
		ProgressInterval:      5 * time.Second,
		ScoreHalfLife:         5 * time.Minute,
	}
}

// SeedConfig returns the seed's behaviour: one block per request, one peer at
// a time (the message's author, then the QC's signers at random), and a
// fast-forward whenever the committed block is unknown. State sync still
// verifies every chunk, fetched one at a time.
func SeedConfig() Config {
	c := DefaultConfig()
	c.BlocksPerRequest = 1
	c.AttemptTimeout = time.Second
	c.HedgeDelay = 0
	c.AdaptiveFlow = false
	c.MaxParallelAttempts = 1
	c.RankPeers = false
	c.FallbackToPeers = false
	c.FastForwardRounds = 0
	c.ForwardMinGap = 0
	c.ChunksInFlight = 1
	c.SnapshotSync = false
	return c
}

// Validate checks c.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf("syncer: config: "+format, args...))
		}
	}
	check(c.BlocksPerRequest >= 1 && c.BlocksPerRequest <= 256, "BlocksPerRequest %d, want 1 to 256", c.BlocksPerRequest)
	check(c.AttemptTimeout > 0, "AttemptTimeout must be positive")
	check(c.MaxAttemptTimeout >= c.AttemptTimeout, "MaxAttemptTimeout below AttemptTimeout")
	check(c.InitialPeerThroughput >= 1<<10, "InitialPeerThroughput %d, want ≥ 1 KiB/s", c.InitialPeerThroughput)
	check(c.MaxResponseTimeout >= c.MaxAttemptTimeout, "MaxResponseTimeout below MaxAttemptTimeout")
	check(c.MaxPeerRequests >= 1 && c.MaxPeerRequests <= 64, "MaxPeerRequests %d, want 1 to 64", c.MaxPeerRequests)
	check(c.HedgeDelay >= 0, "HedgeDelay is negative")
	check(c.MaxParallelAttempts >= 1, "MaxParallelAttempts %d, want ≥ 1", c.MaxParallelAttempts)
	check(c.MaxPendingBytes > 0, "MaxPendingBytes must be positive")
	check(c.ForwardMinGap == 0 || (c.ForwardWindows >= 1 && c.ForwardWindows <= 64), "ForwardWindows %d, want 1 to 64", c.ForwardWindows)
	check(c.ForwardMinGap == 0 || (c.ForwardMaxBytes > 0 && c.ForwardRequestBytes > 0), "ForwardMaxBytes and ForwardRequestBytes must be positive")
	check(c.ChunkTxs >= 1, "ChunkTxs %d, want ≥ 1", c.ChunkTxs)
	check(c.ChunksInFlight >= 1 && c.ChunksInFlight <= 64, "ChunksInFlight %d, want 1 to 64", c.ChunksInFlight)
	check(c.StateChunkLeaves >= 1 && c.StateChunkLeaves <= ledger.MaxSnapshotLeaves, "StateChunkLeaves %d, want 1 to %d", c.StateChunkLeaves, ledger.MaxSnapshotLeaves)
	check(c.ChunkTimeout > 0, "ChunkTimeout must be positive")
	check(c.ProgressInterval > 0, "ProgressInterval must be positive")
	check(c.ScoreHalfLife > 0, "ScoreHalfLife must be positive")
	return errors.Join(errs...)
}
