package syncer

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Outcome is how a request to a peer ended, as the peer's score sees it.
type Outcome uint8

// Outcomes, from best to worst.
const (
	// OutcomeValid: a response that verified.
	OutcomeValid Outcome = iota
	// OutcomeUnavailable: an honest "I don't have it" or "busy".
	OutcomeUnavailable
	// OutcomeTimeout: no response in time, or the stream failed.
	OutcomeTimeout
	// OutcomeInvalid: a response that failed verification — provable
	// misbehaviour.
	OutcomeInvalid
)

func (o Outcome) String() string {
	return [...]string{"valid", "unavailable", "timeout", "invalid"}[o]
}

// Penalty points per outcome. Points decay with the score half-life.
var outcomePenalty = [...]float64{
	OutcomeValid:       -1,
	OutcomeUnavailable: 1,
	OutcomeTimeout:     10,
	OutcomeInvalid:     100,
}

// Scores keeps a score per peer from the outcomes of requests to it: penalty
// points that decay exponentially, plus a moving average of its latency.
// Higher scores are better. It is safe for concurrent use.
type Scores struct {
	halfLife time.Duration

	mu    sync.Mutex
	peers map[peer.ID]*peerScore
}

type peerScore struct {
	penalty float64 // decayed to at
	at      time.Time
	latency time.Duration // exponentially weighted moving average
	counts  [4]uint64     // by Outcome
}

// NewScores returns empty scores whose penalties halve every halfLife.
func NewScores(halfLife time.Duration) *Scores {
	return &Scores{halfLife: halfLife, peers: make(map[peer.ID]*peerScore)}
}

// maxScoredPeers bounds the table; the best-behaved entries are dropped
// first when it is full, so misbehaving peers stay remembered.
const maxScoredPeers = 4096

// Record notes the outcome of a request to p that took latency.
func (s *Scores) Record(p peer.ID, o Outcome, latency time.Duration) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ps, ok := s.peers[p]
	if !ok {
		if len(s.peers) >= maxScoredPeers {
			s.evictLocked(now)
		}
		ps = &peerScore{at: now}
		s.peers[p] = ps
	}
	ps.penalty = s.decayed(ps, now) + outcomePenalty[o]
	if ps.penalty < -10 {
		ps.penalty = -10 // good behaviour earns little credit
	}
	ps.at = now
	ps.counts[o]++
	if o == OutcomeValid {
		if ps.latency == 0 {
			ps.latency = latency
		} else {
			ps.latency = (ps.latency*7 + latency) / 8
		}
	}
}

func (s *Scores) decayed(ps *peerScore, now time.Time) float64 {
	dt := now.Sub(ps.at)
	if dt <= 0 {
		return ps.penalty
	}
	return ps.penalty * math.Exp2(-float64(dt)/float64(s.halfLife))
}

func (s *Scores) evictLocked(now time.Time) {
	var best peer.ID
	bestPenalty := math.Inf(1)
	for p, ps := range s.peers {
		if d := s.decayed(ps, now); d < bestPenalty {
			best, bestPenalty = p, d
		}
	}
	delete(s.peers, best)
}

// NoteSlow notes that p had not answered after d when its request was
// cancelled because another peer answered first: its latency average moves
// up towards d (never down), with no penalty, so ranking learns that it is
// slower than the winner without treating it as faulty.
func (s *Scores) NoteSlow(p peer.ID, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps, ok := s.peers[p]
	if !ok {
		if len(s.peers) >= maxScoredPeers {
			s.evictLocked(time.Now())
		}
		ps = &peerScore{at: time.Now()}
		s.peers[p] = ps
	}
	if d > ps.latency {
		ps.latency = (ps.latency*7 + d) / 8
		if ps.latency < d/8 {
			ps.latency = d / 8
		}
	}
}

// Score returns p's score: minus its decayed penalty, minus one point per
// 100 ms of average latency. An unknown peer scores 0.
func (s *Scores) Score(p peer.ID) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.scoreLocked(p, time.Now())
}

func (s *Scores) scoreLocked(p peer.ID, now time.Time) float64 {
	ps, ok := s.peers[p]
	if !ok {
		return 0
	}
	return -s.decayed(ps, now) - float64(ps.latency)/float64(100*time.Millisecond)
}

// Count returns how many requests to p ended with outcome o.
func (s *Scores) Count(p peer.ID, o Outcome) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ps, ok := s.peers[p]; ok {
		return ps.counts[o]
	}
	return 0
}

// Rank returns peers ordered best score first; peers with equal scores are
// shuffled with rng.
func (s *Scores) Rank(peers []peer.ID, rng *rand.Rand) []peer.ID {
	out := slices.Clone(peers)
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	now := time.Now()
	s.mu.Lock()
	score := make(map[peer.ID]float64, len(out))
	for _, p := range out {
		score[p] = s.scoreLocked(p, now)
	}
	s.mu.Unlock()
	slices.SortStableFunc(out, func(a, b peer.ID) int {
		switch sa, sb := score[a], score[b]; {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return 0
	})
	return out
}
