package consensus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/blockstore"
	"github.com/p2pnode/p2pnode/chain/store"
	"github.com/p2pnode/p2pnode/protocol"
)

var (
	// ErrRunning is returned by Run when the engine runs already or ran
	// before: an Engine runs once; a restarted validator builds a new one.
	ErrRunning = errors.New("consensus: engine already ran")
	// ErrNotValidator is returned by New for a signer outside the
	// validator set.
	ErrNotValidator = errors.New("consensus: signer is not a validator")
	// ErrEpoch is returned by New when the saved safety data belong to
	// another epoch than the validator set's.
	ErrEpoch = errors.New("consensus: safety data of another epoch")
)

// Components are what an Engine works with. Signer, Verifier, Store,
// Syncer, Network and Safety are required.
type Components struct {
	// Signer signs this validator's proposals, votes and timeouts.
	Signer *chain.Signer
	// Verifier checks every message against the chain's validator set.
	Verifier *chain.Verifier
	// Store is the block store shared with the syncer.
	Store *blockstore.Store
	// Syncer catches the node up when a message is ahead of it.
	Syncer Syncer
	// Network sends this validator's messages.
	Network Network
	// Safety persists the safety data.
	Safety SafetyStorage
	// Mempool fills proposals; nil proposes empty blocks.
	Mempool Mempool
	// Leaders elects the leader of each round; nil is [RoundRobin] over the
	// verifier's validator set.
	Leaders LeaderElection
}

// Status is a snapshot of an engine's state.
type Status struct {
	// Round is the current round.
	Round uint64
	// HighestQCRound and HighestTCRound are the rounds of the highest QC
	// and timeout certificate known (0 if no TC).
	HighestQCRound uint64
	HighestTCRound uint64
	// CommittedRound and CommittedVersion describe the last committed block.
	CommittedRound   uint64
	CommittedVersion uint64
	// LastVotedRound and PreferredRound are the persisted safety data.
	LastVotedRound uint64
	PreferredRound uint64
	// Timeouts counts the rounds this validator timed out in.
	Timeouts uint64
	// Proposals counts the blocks this validator proposed.
	Proposals uint64
	// Dropped counts inbound messages dropped because their queue was full.
	Dropped uint64
}

type inbound[T any] struct {
	msg  T
	from peer.ID
}

// Engine is one validator's LibraBFT consensus. See the package
// documentation for its event loop and rules.
//
// One goroutine, the one running Run, owns the consensus state. The Handle
// methods, Status and Dropped are safe for concurrent use from any goroutine
// at any time, before, during or after Run.
type Engine struct {
	cfg      Config
	log      *slog.Logger
	signer   *chain.Signer
	self     peer.ID
	verifier *chain.Verifier
	vs       *chain.ValidatorSet
	epoch    uint64
	store    *blockstore.Store
	syncer   Syncer
	net      Network
	safety   SafetyStorage
	mempool  Mempool
	leaders  LeaderElection

	proposals chan inbound[*protocol.Proposal]
	votes     chan inbound[*protocol.VoteMsg]
	timeouts  chan inbound[*protocol.TimeoutMsg]
	ready     chan struct{} // closed: always ready
	ran       atomic.Bool
	dropped   atomic.Uint64

	// Owned by the goroutine running Run.
	sd           store.SafetyData
	round        uint64
	roundTimeout time.Duration
	highestTC    *chain.TimeoutCert
	proposed     uint64 // the last round this validator proposed in
	timeoutsSeen uint64
	nProposals   uint64
	voteAgg      map[uint64]*voteRound
	timeoutAgg   map[uint64]*timeoutRound
	selfVotes    []*protocol.VoteMsg // votes to this validator as next leader
	timer        *time.Timer
	loggedCommit uint64

	mu     sync.Mutex
	status Status
}

// New returns an engine for the validator c.Signer. It reads the safety
// data, so a restarted validator never votes again in a round at or below
// its LastVotedRound.
func New(c Components, cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if c.Signer == nil || c.Verifier == nil || c.Store == nil || c.Syncer == nil || c.Network == nil || c.Safety == nil {
		return nil, errors.New("consensus: missing component")
	}
	vs := c.Verifier.Validators()
	if !vs.Contains(c.Signer.ID()) {
		return nil, fmt.Errorf("%w: %s", ErrNotValidator, c.Signer.ID())
	}
	sd, err := c.Safety.SafetyData()
	if err != nil {
		return nil, fmt.Errorf("consensus: read safety data: %w", err)
	}
	switch sd.Epoch {
	case 0: // never saved
		sd.Epoch = vs.Epoch()
	case vs.Epoch():
	default:
		return nil, fmt.Errorf("%w: saved epoch %d, validator set epoch %d", ErrEpoch, sd.Epoch, vs.Epoch())
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	leaders := c.Leaders
	if leaders == nil {
		leaders = NewRoundRobin(vs)
	}
	e := &Engine{
		cfg: cfg, log: log, signer: c.Signer, self: c.Signer.ID(), verifier: c.Verifier, vs: vs,
		epoch: vs.Epoch(), store: c.Store, syncer: c.Syncer, net: c.Network, safety: c.Safety,
		mempool: c.Mempool, leaders: leaders,
		proposals:  make(chan inbound[*protocol.Proposal], cfg.ProposalQueue),
		votes:      make(chan inbound[*protocol.VoteMsg], cfg.VoteQueue),
		timeouts:   make(chan inbound[*protocol.TimeoutMsg], cfg.TimeoutQueue),
		ready:      make(chan struct{}),
		sd:         sd,
		voteAgg:    make(map[uint64]*voteRound),
		timeoutAgg: make(map[uint64]*timeoutRound),
	}
	close(e.ready)
	e.loggedCommit = c.Store.Root().Info.Round
	e.publishStatus()
	return e, nil
}

// ID returns the validator's id.
func (e *Engine) ID() peer.ID { return e.self }

// HandleProposal queues a proposal received from the network peer from
// (the pubsub sender, used only in logs: the author is the block's
// signer). It never blocks: it reports false and counts a drop when the
// queue is full; a nil proposal or block is refused.
func (e *Engine) HandleProposal(p *protocol.Proposal, from peer.ID) bool {
	if p == nil || p.Block == nil {
		return false
	}
	return offer(e, e.proposals, inbound[*protocol.Proposal]{p, from})
}

// HandleVote queues a vote received from from. It never blocks: it reports
// false and counts a drop when the queue is full.
func (e *Engine) HandleVote(v *protocol.VoteMsg, from peer.ID) bool {
	if v == nil {
		return false
	}
	return offer(e, e.votes, inbound[*protocol.VoteMsg]{v, from})
}

// HandleTimeout queues a timeout received from from. It never blocks: it
// reports false and counts a drop when the queue is full.
func (e *Engine) HandleTimeout(t *protocol.TimeoutMsg, from peer.ID) bool {
	if t == nil {
		return false
	}
	return offer(e, e.timeouts, inbound[*protocol.TimeoutMsg]{t, from})
}

// HandleMsg queues the proposal or timeout m holds (see HandleProposal and
// HandleTimeout); a message that fails m.Validate is dropped.
func (e *Engine) HandleMsg(m *protocol.ConsensusMsg, from peer.ID) bool {
	if m.Validate() != nil {
		return false
	}
	if m.Proposal != nil {
		return e.HandleProposal(m.Proposal, from)
	}
	return e.HandleTimeout(m.Timeout, from)
}

func offer[T any](e *Engine, ch chan T, v T) bool {
	select {
	case ch <- v:
		return true
	default:
		e.dropped.Add(1)
		return false
	}
}

// Status returns a snapshot of the engine's state as of its last event.
func (e *Engine) Status() Status {
	e.mu.Lock()
	s := e.status
	e.mu.Unlock()
	s.Dropped = e.dropped.Load()
	return s
}

func (e *Engine) publishStatus() {
	root := e.store.Root().Info
	s := Status{
		Round:            e.round,
		HighestQCRound:   e.hqcRound(),
		CommittedRound:   root.Round,
		CommittedVersion: root.Version,
		LastVotedRound:   e.sd.LastVotedRound,
		PreferredRound:   e.sd.PreferredRound,
		Timeouts:         e.timeoutsSeen,
		Proposals:        e.nProposals,
	}
	if e.highestTC != nil {
		s.HighestTCRound = e.highestTC.Round
	}
	if c := e.cfg.CommitLogInterval; c > 0 && root.Round >= e.loggedCommit+c {
		e.loggedCommit = root.Round
		e.log.Info("committed", "round", root.Round, "version", root.Version, "block_id", root.ID.Short(),
			"current_round", e.round)
	}
	e.mu.Lock()
	e.status = s
	e.mu.Unlock()
}

// Run runs the event loop until ctx is done, then returns nil. It enters
// the round after the highest QC or TC known, and proposes if this
// validator leads it. Run may be called once.
func (e *Engine) Run(ctx context.Context) error {
	if !e.ran.CompareAndSwap(false, true) {
		return ErrRunning
	}
	e.timer = time.NewTimer(e.cfg.RoundTimeout)
	defer e.timer.Stop()
	e.advanceRound(ctx)
	e.publishStatus()
	for ctx.Err() == nil {
		if len(e.selfVotes) > 0 {
			// Own votes first, without starving the inputs.
			v := e.selfVotes[0]
			e.selfVotes = e.selfVotes[1:]
			e.onVote(ctx, v, e.self, true)
			e.poll(ctx, false)
		} else {
			e.poll(ctx, true)
		}
		e.publishStatus()
	}
	return nil
}

// poll handles at most one input: the first to come or, if !wait, one
// that is ready now (possibly none).
func (e *Engine) poll(ctx context.Context, wait bool) {
	var skip <-chan struct{}
	if !wait {
		skip = e.ready
	}
	select {
	case <-ctx.Done():
	case <-skip:
	case in := <-e.proposals:
		e.onProposal(ctx, in.msg, in.from)
	case in := <-e.votes:
		e.onVote(ctx, in.msg, in.from, false)
	case in := <-e.timeouts:
		e.onTimeoutMsg(ctx, in.msg, in.from)
	case <-e.timer.C:
		e.onLocalTimeout(ctx)
	}
}

// syncInfo returns this node's SyncInfo.
func (e *Engine) syncInfo() chain.SyncInfo { return e.store.SyncInfo(e.highestTC) }

func (e *Engine) highestTCRound() uint64 {
	if e.highestTC == nil {
		return 0
	}
	return e.highestTC.Round
}

func (e *Engine) hqcRound() uint64 {
	qc := e.store.HighestQC()
	return qc.Round()
}
