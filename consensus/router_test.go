package consensus_test

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/consensus"
	"github.com/p2pnode/p2pnode/protocol"
)

// router delivers consensus messages between instances with seeded delays,
// losses and partitions. Every message crosses the wire codec.
type router struct {
	mu       sync.Mutex
	rng      *rand.Rand
	minDelay time.Duration
	maxDelay time.Duration
	drop     float64
	// blocked, if set, cuts the link from → to for messages of a round.
	blocked func(from, to *instance, round uint64) bool
	insts   []*instance
	// watch, if set, is a validator whose proposals and votes are recorded
	// by round, to count its equivocations.
	watch     peer.ID
	proposals map[uint64]map[chain.Hash]bool
	votes     map[uint64]map[chain.Hash]bool

	delivered, lost atomic.Int64
}

func (r *router) record(m map[uint64]map[chain.Hash]bool, round uint64, h chain.Hash) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m[round] == nil {
		m[round] = map[chain.Hash]bool{}
	}
	m[round][h] = true
}

// equivocations returns the rounds in which the watched validator sent two
// different proposals, and those in which it sent two different votes.
func (r *router) equivocations() (proposals, votes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.proposals {
		if len(s) > 1 {
			proposals++
		}
	}
	for _, s := range r.votes {
		if len(s) > 1 {
			votes++
		}
	}
	return proposals, votes
}

func (r *router) setBlocked(f func(from, to *instance, round uint64) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.blocked = f
}

// endpoint is one engine's consensus.Network.
type endpoint struct {
	r    *router
	from *instance
	gen  uint64
}

func (ep *endpoint) Broadcast(m *protocol.ConsensusMsg) {
	enc := mustEncode(m)
	round := msgRound(m)
	if m.Proposal != nil && ep.from.id == ep.r.watch {
		ep.r.record(ep.r.proposals, round, m.Proposal.Block.ID)
	}
	for _, to := range ep.r.insts {
		if to != ep.from {
			ep.r.send(ep, to, round, func(e *consensus.Engine) {
				dec, err := protocol.DecodeConsensusMsg(enc)
				if err != nil {
					panic(err)
				}
				e.HandleMsg(dec, ep.from.id)
			})
		}
	}
}

func (ep *endpoint) SendVote(to peer.ID, m *protocol.VoteMsg) {
	enc := mustEncode(m)
	if ep.from.id == ep.r.watch {
		ep.r.record(ep.r.votes, m.Vote.VoteData.Proposed.Round, m.Vote.LedgerInfo.Hash())
	}
	for _, in := range ep.r.insts {
		if in.id == to && in != ep.from {
			ep.r.send(ep, in, m.Vote.VoteData.Proposed.Round, func(e *consensus.Engine) {
				dec, err := protocol.DecodeVoteMsg(enc)
				if err != nil {
					panic(err)
				}
				e.HandleVote(dec, ep.from.id)
			})
		}
	}
}

func (r *router) send(ep *endpoint, to *instance, round uint64, deliver func(*consensus.Engine)) {
	r.mu.Lock()
	cut := r.blocked != nil && r.blocked(ep.from, to, round)
	lost := r.drop > 0 && r.rng.Float64() < r.drop
	d := r.minDelay
	if r.maxDelay > r.minDelay {
		d += time.Duration(r.rng.Int64N(int64(r.maxDelay - r.minDelay)))
	}
	r.mu.Unlock()
	if cut || lost || ep.from.gen.Load() != ep.gen {
		r.lost.Add(1)
		return
	}
	now := func() {
		if e := to.engine.Load(); e != nil {
			r.delivered.Add(1)
			deliver(e)
		}
	}
	if d == 0 {
		now()
		return
	}
	time.AfterFunc(d, now)
}

func msgRound(m *protocol.ConsensusMsg) uint64 {
	if m.Proposal != nil {
		return m.Proposal.Block.Round()
	}
	return m.Timeout.Round
}

func mustEncode(v any) []byte {
	enc, err := chain.Encode(v)
	if err != nil {
		panic(err)
	}
	return enc
}
