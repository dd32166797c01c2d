package node

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/consensus"
	"github.com/p2pnode/p2pnode/syncer"
)

// ErrInvalidConfig is the reason of every error Config.Validate returns.
var ErrInvalidConfig = errors.New("node: invalid config")

// Config configures a Node. Start from [DefaultConfig] and set Home, Genesis
// and Key; New calls Validate.
type Config struct {
	// Home is the node's data directory; it holds the store file
	// (store.db). It is created if missing.
	Home string
	// Genesis defines the chain the node follows.
	Genesis *chain.Genesis
	// Key is the node's identity: its peer id is derived from it. The node
	// is a validator if that peer id is in the genesis validator set, and a
	// full node otherwise. Validators need an ed25519 key.
	Key crypto.PrivKey

	// ListenAddrs are the multiaddrs the host listens on.
	ListenAddrs []ma.Multiaddr
	// Bootstrap are peers the node connects to at start-up and keeps
	// reconnecting to (with bounded exponential backoff) while it runs.
	Bootstrap []peer.AddrInfo
	// ReconnectMin and ReconnectMax bound the backoff between two attempts
	// to reach a bootstrap peer.
	ReconnectMin, ReconnectMax time.Duration

	// APIAddr is the HTTP API's listen address (host:port); "" disables
	// the API.
	APIAddr string

	// TxRate, if positive, runs the built-in load generator: this many
	// key/value transactions per second enter the local mempool and are
	// gossiped.
	TxRate float64
	// TxSize is the size of a generated transaction's value in bytes.
	TxSize int
	// Seed seeds the load generator's keys and values (mixed with the
	// node's peer id, so nodes with the same seed generate different
	// transactions) and the syncer's choice of peers.
	Seed uint64

	// SyncInfoInterval is how often the node gossips its SyncInfo even when
	// it has not changed.
	SyncInfoInterval time.Duration
	// SyncTimeout is the deadline of one sync triggered by gossip; a sync
	// cut short resumes with the next SyncInfo ahead of the node.
	SyncTimeout time.Duration
	// Syncer configures the sync manager. Its Logger and Seed are set by
	// the node.
	Syncer syncer.Config

	// Consensus configures a validator's consensus engine. Its Logger is
	// set by the node.
	Consensus consensus.Config

	// Mempool bounds the pool of pending transactions.
	Mempool MempoolConfig
	// Limits bounds the resources peers can use.
	Limits Limits

	// ReadyRounds is how many rounds the node's highest QC may trail the
	// best QC round heard from peers for GET /health to call it ready.
	ReadyRounds uint64

	// PruneWindow, if not 0, is how many committed versions (transactions)
	// of history the node keeps: every PruneInterval it deletes the
	// transactions, and the blocks holding them, more than PruneWindow
	// versions below its committed version (docs/protocol.md section
	// 7.5). 0 keeps the whole history.
	PruneWindow uint64
	// PruneInterval is how often a node with a PruneWindow prunes.
	PruneInterval time.Duration
	// Version is the release version the node reports (GET /status,
	// p2pnode_build_info); "" reads the main module's version.
	Version string

	// Logger receives the node's logs; each subsystem logs through
	// Logger.With("logger", "p2pnode/<subsystem>"). nil discards them.
	Logger *slog.Logger
}

// Limits bounds what the host and the stream servers give to peers.
type Limits struct {
	// MaxMemory is the libp2p resource manager's memory budget in bytes.
	MaxMemory int64
	// MaxFDs is the resource manager's file descriptor budget.
	MaxFDs int
	// ConnsLow and ConnsHigh are the connection manager's watermarks:
	// above ConnsHigh it trims connections down to ConnsLow, never those
	// to validators.
	ConnsLow, ConnsHigh int
	// ServeRate and ServeBurst are each peer's token bucket for block and
	// chunk requests: ServeRate requests per second on average, bursts of
	// ServeBurst. A request over the limit is answered with status busy.
	ServeRate  float64
	ServeBurst int
	// ServeBytesRate and ServeBytesBurst are each peer's token bucket of
	// response bytes for those protocols: a peer is served while its
	// bucket is not in debt, and each response then takes its encoded
	// size, so that a peer gets ServeBytesRate bytes per second on
	// average whatever the size of what it asks. Past it, status busy.
	ServeBytesRate  float64
	ServeBytesBurst int
	// RequestTimeout bounds how long a server waits for a request frame.
	RequestTimeout time.Duration
	// ResponseTimeout and MinResponseRate bound how long a server takes to
	// write a response of n bytes: ResponseTimeout plus n bytes at
	// MinResponseRate bytes per second, so that a large response to an
	// honest client on a slow link is not cut off while a client that
	// stops reading still is.
	ResponseTimeout time.Duration
	MinResponseRate float64
	// MaxBlockResponseBytes caps the encoded size of a block response this
	// node sends (at most protocol.MaxBlockResponseSize).
	MaxBlockResponseBytes int
}

// DefaultConfig returns the configuration of a node listening on loopback
// TCP and QUIC at ports chosen by the system, with the API off.
func DefaultConfig() Config {
	return Config{
		ListenAddrs: []ma.Multiaddr{
			ma.StringCast("/ip4/127.0.0.1/tcp/0"),
			ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1"),
		},
		ReconnectMin:     250 * time.Millisecond,
		ReconnectMax:     10 * time.Second,
		TxSize:           64,
		SyncInfoInterval: 2 * time.Second,
		SyncTimeout:      2 * time.Minute,
		Syncer:           syncer.DefaultConfig(),
		Consensus:        consensus.DefaultConfig(),
		Mempool:          DefaultMempoolConfig(),
		ReadyRounds:      10,
		PruneInterval:    10 * time.Second,
		Limits: Limits{
			MaxMemory:             512 << 20,
			MaxFDs:                1024,
			ConnsLow:              64,
			ConnsHigh:             128,
			ServeRate:             400,
			ServeBurst:            800,
			ServeBytesRate:        128 << 20,
			ServeBytesBurst:       64 << 20,
			RequestTimeout:        5 * time.Second,
			ResponseTimeout:       30 * time.Second,
			MinResponseRate:       256 << 10,
			MaxBlockResponseBytes: 16 << 20,
		},
	}
}

// Validate checks c.
func (c *Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
		}
	}
	check(c.Home != "", "Home is empty")
	if c.Genesis == nil {
		errs = append(errs, fmt.Errorf("%w: Genesis is nil", ErrInvalidConfig))
	} else if err := c.Genesis.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("%w: genesis: %w", ErrInvalidConfig, err))
	}
	check(c.Key != nil, "Key is nil")
	check(len(c.ListenAddrs) > 0, "no ListenAddrs")
	check(c.ReconnectMin > 0 && c.ReconnectMax >= c.ReconnectMin, "ReconnectMin %v, ReconnectMax %v: want 0 < min ≤ max", c.ReconnectMin, c.ReconnectMax)
	check(c.TxRate >= 0, "TxRate is negative")
	check(c.TxRate == 0 || (c.TxSize >= 1 && c.TxSize <= chain.MaxTxSize-64), "TxSize %d, want 1 to %d", c.TxSize, chain.MaxTxSize-64)
	check(c.SyncInfoInterval > 0, "SyncInfoInterval must be positive")
	check(c.SyncTimeout > 0, "SyncTimeout must be positive")
	check(c.PruneWindow == 0 || c.PruneInterval > 0, "PruneInterval must be positive with a PruneWindow")
	if err := c.Syncer.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("%w: Syncer: %w", ErrInvalidConfig, err))
	}
	if err := c.Consensus.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("%w: Consensus: %w", ErrInvalidConfig, err))
	}
	if err := c.Mempool.Validate(); err != nil {
		errs = append(errs, err)
	}
	l := c.Limits
	check(l.MaxMemory >= 64<<20, "Limits.MaxMemory %d, want ≥ 64 MiB", l.MaxMemory)
	check(l.MaxFDs >= 64, "Limits.MaxFDs %d, want ≥ 64", l.MaxFDs)
	check(l.ConnsLow >= 1 && l.ConnsHigh >= l.ConnsLow, "Limits.ConnsLow %d, ConnsHigh %d: want 1 ≤ low ≤ high", l.ConnsLow, l.ConnsHigh)
	check(l.ServeRate > 0 && l.ServeBurst >= 1, "Limits.ServeRate and ServeBurst must be positive")
	check(l.ServeBytesRate > 0 && l.ServeBytesBurst >= 1, "Limits.ServeBytesRate and ServeBytesBurst must be positive")
	check(l.RequestTimeout > 0 && l.ResponseTimeout > 0, "Limits.RequestTimeout and ResponseTimeout must be positive")
	check(l.MinResponseRate > 0, "Limits.MinResponseRate must be positive")
	check(l.MaxBlockResponseBytes >= chain.MaxEncodedBlockSize+64<<10 && l.MaxBlockResponseBytes <= maxBlockResponse,
		"Limits.MaxBlockResponseBytes %d, want %d to %d", l.MaxBlockResponseBytes, chain.MaxEncodedBlockSize+64<<10, maxBlockResponse)
	return errors.Join(errs...)
}
