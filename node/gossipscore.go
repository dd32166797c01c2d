package node

import (
	"math"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"
)

// maxRejectionPeers bounds the peers whose invalid messages are remembered
// before the fully decayed ones are swept.
const maxRejectionPeers = 4096

// rejections is the invalid-message penalty of the node's peer score,
// GossipSub's P4 computed outside the router: per peer and topic, a count
// of the messages that peer delivered first and the node rejected as
// provably invalid (a topic validator's Reject, or a bad, missing or
// unexpected signature), decaying to 1% in an hour; the peer's score is
// invalidMessageWeight times the sum over topics of the topic's weight and
// the count squared. It counts no copy of the node's own message, which
// go-libp2p-pubsub rejects as self-originated: relaying a message to its
// author is what a js-libp2p peer does, not a fault. It is a
// pubsub.RawTracer and is safe for concurrent use.
type rejections struct {
	weights map[string]float64 // by topic name
	now     func() time.Time
	// perSecond is the decay of a count per second.
	perSecond float64

	mu    sync.Mutex
	peers map[peer.ID]*rejectionRecord
}

type rejectionRecord struct {
	counts map[string]float64 // by topic name, as of last
	last   time.Time
}

var _ pubsub.RawTracer = (*rejections)(nil)

// newRejections counts rejections on the topics (kind to name) with the
// clock now.
func newRejections(topics map[string]string, now func() time.Time) *rejections {
	r := &rejections{
		weights:   make(map[string]float64, len(topics)),
		now:       now,
		perSecond: math.Pow(0.01, 1/invalidMessageDecay.Seconds()),
		peers:     make(map[peer.ID]*rejectionRecord),
	}
	for kind, name := range topics {
		r.weights[name] = topicWeight(kind)
	}
	return r
}

// counted reports whether a rejection for reason proves the delivering
// peer at fault.
func counted(reason string) bool {
	switch reason {
	case pubsub.RejectValidationFailed, pubsub.RejectInvalidSignature, pubsub.RejectMissingSignature,
		pubsub.RejectUnexpectedSignature, pubsub.RejectUnexpectedAuthInfo:
		return true
	}
	// RejectSelfOrigin (the node's own message relayed back), ignored or
	// throttled validation, a full queue, blacklisted peers: no fault of
	// the peer, or already handled.
	return false
}

// RejectMessage counts msg against the peer that delivered it, if reason
// proves a fault.
func (r *rejections) RejectMessage(msg *pubsub.Message, reason string) {
	if !counted(reason) {
		return
	}
	topic := msg.GetTopic()
	if _, ok := r.weights[topic]; !ok {
		return
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.peers[msg.ReceivedFrom]
	if !ok {
		if len(r.peers) >= maxRejectionPeers {
			r.sweep(now)
		}
		rec = &rejectionRecord{counts: make(map[string]float64), last: now}
		r.peers[msg.ReceivedFrom] = rec
	}
	r.decay(rec, now)
	rec.counts[topic]++
}

// score is p's application-specific score: 0 or negative.
func (r *rejections) score(p peer.ID) float64 {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.peers[p]
	if !ok {
		return 0
	}
	r.decay(rec, now)
	s := 0.0
	for topic, c := range rec.counts {
		s += r.weights[topic] * c * c
	}
	if len(rec.counts) == 0 {
		delete(r.peers, p)
	}
	return invalidMessageWeight * s
}

// decay brings rec's counts to now, dropping those below 0.01 as the
// router's DecayToZero does.
func (r *rejections) decay(rec *rejectionRecord, now time.Time) {
	dt := now.Sub(rec.last).Seconds()
	if dt <= 0 {
		return
	}
	f := math.Pow(r.perSecond, dt)
	for topic, c := range rec.counts {
		if c *= f; c < 0.01 {
			delete(rec.counts, topic)
		} else {
			rec.counts[topic] = c
		}
	}
	rec.last = now
}

// sweep forgets the peers whose counts have decayed away.
func (r *rejections) sweep(now time.Time) {
	for p, rec := range r.peers {
		if r.decay(rec, now); len(rec.counts) == 0 {
			delete(r.peers, p)
		}
	}
}

// The rest of pubsub.RawTracer: nothing to count.

func (*rejections) OnNewOutboundStream(peer.ID, libp2pproto.ID)          {}
func (*rejections) OnClosedOutboundStream(peer.ID)                       {}
func (*rejections) Join(string)                                          {}
func (*rejections) Leave(string)                                         {}
func (*rejections) Graft(peer.ID, string)                                {}
func (*rejections) Prune(peer.ID, string)                                {}
func (*rejections) ValidateMessage(*pubsub.Message)                      {}
func (*rejections) DeliverMessage(*pubsub.Message)                       {}
func (*rejections) DuplicateMessage(*pubsub.Message)                     {}
func (*rejections) ThrottlePeer(peer.ID)                                 {}
func (*rejections) RecvRPC(*pubsub.RPC)                                  {}
func (*rejections) SendRPC(*pubsub.RPC, peer.ID)                         {}
func (*rejections) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
func (*rejections) DropRPC(*pubsub.RPC, peer.ID)                         {}
func (*rejections) UndeliverableMessage(*pubsub.Message)                 {}
