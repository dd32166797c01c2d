package bench

import (
	"errors"
	"fmt"
	"time"

	"github.com/p2pnode/p2pnode/chain"
)

// Mode is what a run measures.
type Mode string

// Modes of a run.
const (
	// ModeBlocks catches up block by block: every block fetched, verified,
	// executed and stored.
	ModeBlocks Mode = "blocks"
	// ModeStateSync fast-forwards: the committed 3-chain is fetched, then
	// the ledger's transactions in verified chunks.
	ModeStateSync Mode = "statesync"
	// ModeSnapshot fast-forwards a fresh node by snapshot sync: the
	// committed 3-chain is fetched, then the state at the committed version
	// in verified chunks of leaves, whatever the length of the history.
	ModeSnapshot Mode = "snapshot"
)

// Config says what a run builds and measures. The zero value is not valid;
// start from [DefaultConfig].
type Config struct {
	// Mode is ModeBlocks, ModeStateSync or ModeSnapshot.
	Mode Mode
	// Blocks is the length N of the chain the servers hold (genesis
	// excluded), at least 4.
	Blocks int
	// TxsPerBlock and TxSize say what each block carries.
	TxsPerBlock int
	TxSize      int
	// StateKeys, if positive, bounds the chain's state: transaction i
	// writes key i mod StateKeys, so that the history overwrites a state of
	// StateKeys keys. 0 gives every transaction a fresh key.
	StateKeys int
	// Validators is the size of the validator set that signs the chain.
	Validators int
	// Peers is the number of serving hosts. The first min(Peers,
	// Validators) of them have the validators' identities.
	Peers int
	// Latency is added by a server before each response it writes: one
	// added delay per message answered.
	Latency time.Duration
	// Link, if not zero, puts every host (the serving hosts and the
	// syncing node) on a simulated packet network (QUIC over simnet, in
	// real time) behind a link of that round-trip time and bandwidth,
	// instead of loopback TCP. Latency still adds its delay per response.
	Link Link
	// SeedBlocks caps the blocks the seed baseline catches up in block
	// mode: it measures a prefix of min(Blocks, SeedBlocks) blocks. 0 skips
	// the seed baseline, which snapshot mode never runs (the seed has no
	// snapshot sync).
	SeedBlocks int
	// SkipCeiling skips the ceiling measurement.
	SkipCeiling bool
	// MaxPendingBytes, if positive, replaces the syncer's
	// Config.MaxPendingBytes (the bound on blocks a walk holds in memory).
	MaxPendingBytes int
	// Seed seeds the validators' keys and the chain's transactions.
	Seed uint64
	// CacheDir keeps built chains across runs, one directory per chain
	// parameters; empty means a p2pnode-bench directory under
	// os.TempDir().
	CacheDir string
	// NoCache builds the chain in WorkDir and removes it at the end of
	// the run instead of keeping it in CacheDir.
	NoCache bool
	// WorkDir holds the stores of the run, removed at its end; empty means
	// os.TempDir().
	WorkDir string
}

// DefaultConfig returns a block-mode run over 10,000 blocks of 100
// transactions of 100 bytes, 4 validators serving, no added latency.
func DefaultConfig() Config {
	return Config{
		Mode:        ModeBlocks,
		Blocks:      10_000,
		TxsPerBlock: 100,
		TxSize:      100,
		Validators:  4,
		Peers:       4,
		SeedBlocks:  2_000,
		Seed:        1,
	}
}

// Bounds of the state a chain writes.
const (
	// maxStateKeys caps Config.StateKeys.
	maxStateKeys = 100_000_000
	// minKVTxSize is the smallest transaction chaintest makes a key/value
	// write of (an 8-byte key).
	minKVTxSize = 11
)

// ErrConfig is the reason of every error of [Config.Validate].
var ErrConfig = errors.New("bench: invalid config")

// Validate checks c.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...))
		}
	}
	check(c.Mode == ModeBlocks || c.Mode == ModeStateSync || c.Mode == ModeSnapshot,
		"mode %q, want %q, %q or %q", c.Mode, ModeBlocks, ModeStateSync, ModeSnapshot)
	check(c.Blocks >= 4 && c.Blocks <= 10_000_000, "blocks %d, want 4 to 10,000,000", c.Blocks)
	check(c.TxsPerBlock >= 0 && c.TxsPerBlock <= chain.MaxBlockTxs, "txs per block %d, want 0 to %d", c.TxsPerBlock, chain.MaxBlockTxs)
	check(c.TxSize >= 1 && c.TxSize <= chain.MaxTxSize, "tx size %d, want 1 to %d", c.TxSize, chain.MaxTxSize)
	check(c.TxsPerBlock*c.TxSize <= chain.MaxBlockPayload, "block payload %d bytes, limit %d", c.TxsPerBlock*c.TxSize, chain.MaxBlockPayload)
	check(c.StateKeys >= 0 && c.StateKeys <= maxStateKeys, "state keys %d, want 0 to %d", c.StateKeys, maxStateKeys)
	check(c.StateKeys == 0 || c.TxSize >= minKVTxSize, "state keys need key/value transactions of at least %d bytes, tx size %d", minKVTxSize, c.TxSize)
	check(c.Mode != ModeSnapshot || (c.TxSize >= minKVTxSize && c.TxsPerBlock >= 1),
		"snapshot mode needs a state: key/value transactions (tx size at least %d, at least one per block), got %d × %d B", minKVTxSize, c.TxsPerBlock, c.TxSize)
	check(c.Validators >= 1 && c.Validators <= 64, "validators %d, want 1 to 64", c.Validators)
	check(c.Peers >= 1 && c.Peers <= 64, "peers %d, want 1 to 64", c.Peers)
	check(c.Latency >= 0 && c.Latency <= 10*time.Second, "latency %v, want 0 to 10s", c.Latency)
	check(c.Link.IsZero() || (c.Link.RTT >= 0 && c.Link.BitsPerSecond >= 100_000), "link %v, want a bandwidth of at least 100kbit", c.Link)
	check(c.SeedBlocks == 0 || c.SeedBlocks >= 3, "seed blocks %d, want 0 or at least 3", c.SeedBlocks)
	check(c.MaxPendingBytes >= 0, "max pending bytes %d is negative", c.MaxPendingBytes)
	return errors.Join(errs...)
}
