package consensus

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/p2pnode/p2pnode/chain"
)

// Config tunes an Engine. The zero value is not valid; start from
// [DefaultConfig] and change fields.
type Config struct {
	// RoundTimeout is the base round timeout: a round that directly follows
	// a QC times out after RoundTimeout; each further round without a QC
	// doubles it (RoundTimeout·2^k, k = rounds since the highest QC's round
	// + 1), up to MaxRoundTimeout. A timed-out round re-broadcasts its
	// timeout every round timeout until the round ends. The round timeout
	// is also the deadline of a sync triggered by a message.
	RoundTimeout    time.Duration
	MaxRoundTimeout time.Duration
	// MaxBlockTxs and MaxBlockBytes bound a proposal's payload: at most
	// MaxBlockTxs transactions of MaxBlockBytes summed bytes (at most
	// chain.MaxBlockTxs and chain.MaxBlockPayload).
	MaxBlockTxs   int
	MaxBlockBytes int
	// ProposalQueue, VoteQueue and TimeoutQueue are the capacities of the
	// inbound queues; a message that finds its queue full is dropped and
	// counted (Status.Dropped).
	ProposalQueue int
	VoteQueue     int
	TimeoutQueue  int
	// CommitLogInterval: the engine logs at Info level when the committed
	// round has advanced by at least this many rounds since the last such
	// log; 0 never does. Round changes are logged at Debug level.
	CommitLogInterval uint64
	// Logger receives the engine's logs; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the configuration of a production validator.
func DefaultConfig() Config {
	return Config{
		RoundTimeout:      time.Second,
		MaxRoundTimeout:   10 * time.Second,
		MaxBlockTxs:       2000,
		MaxBlockBytes:     1 << 20,
		ProposalQueue:     64,
		VoteQueue:         256,
		TimeoutQueue:      256,
		CommitLogInterval: 100,
	}
}

// Validate checks c.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf("consensus: config: "+format, args...))
		}
	}
	check(c.RoundTimeout > 0, "RoundTimeout must be positive")
	check(c.MaxRoundTimeout >= c.RoundTimeout, "MaxRoundTimeout %v below RoundTimeout %v", c.MaxRoundTimeout, c.RoundTimeout)
	check(c.MaxBlockTxs >= 0 && c.MaxBlockTxs <= chain.MaxBlockTxs, "MaxBlockTxs %d, want 0 to %d", c.MaxBlockTxs, chain.MaxBlockTxs)
	check(c.MaxBlockBytes >= 0 && c.MaxBlockBytes <= chain.MaxBlockPayload, "MaxBlockBytes %d, want 0 to %d", c.MaxBlockBytes, chain.MaxBlockPayload)
	check(c.ProposalQueue >= 1, "ProposalQueue %d, want ≥ 1", c.ProposalQueue)
	check(c.VoteQueue >= 1, "VoteQueue %d, want ≥ 1", c.VoteQueue)
	check(c.TimeoutQueue >= 1, "TimeoutQueue %d, want ≥ 1", c.TimeoutQueue)
	return errors.Join(errs...)
}

// roundTimeout returns the timeout of a round that is k rounds past the
// round after the highest QC: RoundTimeout·2^k, at most MaxRoundTimeout.
func (c Config) roundTimeout(k uint64) time.Duration {
	d := c.RoundTimeout
	for ; k > 0; k-- {
		if d > c.MaxRoundTimeout/2 {
			return c.MaxRoundTimeout
		}
		d *= 2
	}
	return min(d, c.MaxRoundTimeout)
}
