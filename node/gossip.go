package node

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/protocol"
)

// maxPubsubMessage caps a pubsub message on every topic: the largest
// consensus message plus the envelope (signature, key, seqno, topic).
// Each topic's validator applies its own, smaller limit.
const maxPubsubMessage = protocol.MaxConsensusMsgSize + 4<<10

// Topic kinds, for logs and metrics.
const (
	topicSyncInfo  = "syncinfo"
	topicConsensus = "consensus"
	topicTx        = "tx"
)

// gossip owns the node's GossipSub router and its three topics.
type gossip struct {
	ps        *pubsub.PubSub
	syncInfo  *pubsub.Topic
	consensus *pubsub.Topic
	tx        *pubsub.Topic
	subs      []*pubsub.Subscription
	closed    sync.Once
}

// validators checks gossip before GossipSub forwards it: a provable fault
// is rejected (the router penalises the peer that sent it), a message this
// node cannot judge yet is ignored. It is safe for concurrent use.
type validators struct {
	verifier *chain.Verifier
	self     peer.ID // the node's id, set by startGossip
	log      *slog.Logger
	result   func(topic string, r pubsub.ValidationResult) // counts results
}

// startGossip creates the GossipSub router of h with the parameters of
// gossipOptions, joins the chain's topics with their validators and
// subscribes to them. ctx ends the router. extra options (tests' tracers
// and score inspectors) come after the node's own.
func startGossip(ctx context.Context, h host.Host, chainID string, v *validators, log *slog.Logger, extra ...pubsub.Option) (*gossip, error) {
	names := topicNames(chainID)
	v.self = h.ID()
	ps, err := pubsub.NewGossipSub(ctx, h, append(gossipOptions(names, newRejections(names, time.Now), log), extra...)...)
	if err != nil {
		return nil, fmt.Errorf("node: gossipsub: %w", err)
	}
	g := &gossip{ps: ps}
	vals := map[string]pubsub.ValidatorEx{
		topicSyncInfo:  v.validateSyncInfo,
		topicConsensus: v.validateConsensus,
		topicTx:        v.validateTx,
	}
	for _, kind := range []string{topicSyncInfo, topicConsensus, topicTx} {
		name := names[kind]
		if err := ps.RegisterTopicValidator(name, vals[kind]); err != nil {
			return nil, fmt.Errorf("node: validator of %s: %w", name, err)
		}
		t, err := ps.Join(name)
		if err != nil {
			return nil, fmt.Errorf("node: join %s: %w", name, err)
		}
		sub, err := t.Subscribe(pubsub.WithBufferSize(256))
		if err != nil {
			return nil, fmt.Errorf("node: subscribe %s: %w", name, err)
		}
		g.subs = append(g.subs, sub)
		switch kind {
		case topicSyncInfo:
			g.syncInfo = t
		case topicConsensus:
			g.consensus = t
		case topicTx:
			g.tx = t
		}
	}
	return g, nil
}

// topicNames maps the topic kinds to the chain's topic names.
func topicNames(chainID string) map[string]string {
	return map[string]string{
		topicSyncInfo:  protocol.SyncInfoTopic(chainID),
		topicConsensus: protocol.ConsensusTopic(chainID),
		topicTx:        protocol.TxTopic(chainID),
	}
}

// gossipOptions are the router's options, as docs/protocol.md section 8.2
// lists them for other implementations to match: GossipSub v1.1 mesh
// parameters set explicitly (the go-libp2p-pubsub defaults of v0.19, so an
// upgrade cannot change them unseen), strict signing, message ids from the
// author and sequence number, flood publishing, peer exchange, and peer
// scoring whose invalid-message penalty (P4) is counted by rej rather than
// by the router, so that a peer relaying the node's own message back is
// never penalised (see rejections).
func gossipOptions(topics map[string]string, rej *rejections, log *slog.Logger) []pubsub.Option {
	return []pubsub.Option{
		pubsub.WithGossipSubParams(gossipParams()),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithMessageIdFn(pubsub.DefaultMsgIdFn),
		pubsub.WithSeenMessagesTTL(2 * time.Minute),
		pubsub.WithFloodPublish(true),
		pubsub.WithPeerScore(peerScoreParams(topics, rej), peerScoreThresholds()),
		pubsub.WithRawTracer(rej),
		pubsub.WithMaxMessageSize(maxPubsubMessage),
		pubsub.WithPeerExchange(true),
		pubsub.WithLogger(log),
	}
}

// gossipParams are the mesh parameters of docs/protocol.md section 8.2.
func gossipParams() pubsub.GossipSubParams {
	p := pubsub.DefaultGossipSubParams()
	p.D, p.Dlo, p.Dhi, p.Dscore, p.Dout, p.Dlazy = 6, 5, 12, 4, 2, 6
	p.HistoryLength, p.HistoryGossip = 5, 3
	p.GossipFactor = 0.25
	p.HeartbeatInitialDelay = 100 * time.Millisecond
	p.HeartbeatInterval = time.Second
	p.FanoutTTL = time.Minute
	p.PruneBackoff = time.Minute
	p.UnsubscribeBackoff = 10 * time.Second
	return p
}

// close cancels the subscriptions and closes the topics; it is idempotent.
func (g *gossip) close() {
	g.closed.Do(func() {
		for _, s := range g.subs {
			s.Cancel()
		}
		for _, t := range []*pubsub.Topic{g.syncInfo, g.consensus, g.tx} {
			if t != nil {
				_ = t.Close() // fails only while subscriptions are open
			}
		}
	})
}

// publish encodes m and publishes it on t; the decoded value travels with
// the local copy, as a validator would have left it.
func publish(ctx context.Context, t *pubsub.Topic, m any) error {
	data, err := chain.Encode(m)
	if err != nil {
		return err
	}
	return t.Publish(ctx, data, pubsub.WithValidatorData(m))
}

// verdict maps a verification error to a validation result.
func (v *validators) verdict(topic string, from peer.ID, err error) pubsub.ValidationResult {
	r := pubsub.ValidationAccept
	switch {
	case err == nil:
	case chain.IsSoft(err):
		r = pubsub.ValidationIgnore
		v.log.Debug("gossip ignored", "topic", topic, "peer", from, "err", err)
	default:
		r = pubsub.ValidationReject
		v.log.Warn("gossip rejected", "topic", topic, "peer", from, "err", err)
	}
	v.result(topic, r)
	return r
}

// own settles a local-only message (accepted) and a copy of one the node
// published that a peer relayed back: ignored, never rejected, since
// relaying it is no fault (go-libp2p-pubsub drops such a copy before the
// validators run; this keeps the rule whatever the router does). The
// node's own publications are validated like any message.
func (v *validators) own(topic string, msg *pubsub.Message) (pubsub.ValidationResult, bool) {
	switch {
	case msg.Local:
		return pubsub.ValidationAccept, true
	case v.self != "" && msg.GetFrom() == v.self && msg.ReceivedFrom != v.self:
		v.result(topic, pubsub.ValidationIgnore)
		return pubsub.ValidationIgnore, true
	}
	return 0, false
}

func (v *validators) validateSyncInfo(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	if r, done := v.own(topicSyncInfo, msg); done {
		return r
	}
	m, err := protocol.DecodeSyncInfoMsg(msg.Data)
	if err == nil {
		err = v.verifier.VerifySyncInfo(&m.SyncInfo)
	}
	msg.ValidatorData = m
	return v.verdict(topicSyncInfo, msg.GetFrom(), err)
}

func (v *validators) validateConsensus(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	if r, done := v.own(topicConsensus, msg); done {
		return r
	}
	m, err := protocol.DecodeConsensusMsg(msg.Data)
	if err == nil {
		err = v.verifyConsensus(m)
	}
	msg.ValidatorData = m
	return v.verdict(topicConsensus, msg.GetFrom(), err)
}

// verifyConsensus checks a proposal's block or a timeout's signature, and
// the SyncInfo the message carries.
func (v *validators) verifyConsensus(m *protocol.ConsensusMsg) error {
	if p := m.Proposal; p != nil {
		if err := v.verifier.VerifyBlock(p.Block); err != nil {
			return err
		}
		return v.verifier.VerifySyncInfo(&p.SyncInfo)
	}
	t := m.Timeout
	if err := v.verifier.VerifyTimeout(t.Epoch, t.Round, t.Signature); err != nil {
		return err
	}
	return v.verifier.VerifySyncInfo(&t.SyncInfo)
}

func (v *validators) validateTx(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	if r, done := v.own(topicTx, msg); done {
		return r
	}
	m, err := protocol.DecodeTxMsg(msg.Data)
	msg.ValidatorData = m
	return v.verdict(topicTx, msg.GetFrom(), err)
}

// Score weights of the topics and of an invalid message.
const (
	// invalidMessageWeight is the weight of the square of a peer's decayed
	// count of invalid messages on a topic (P4), times the topic's weight.
	invalidMessageWeight = -100
	// invalidMessageDecay is the half-life-like horizon of that count: it
	// decays to 1% of itself in an hour.
	invalidMessageDecay = time.Hour
)

// topicWeight is the score weight of a topic kind.
func topicWeight(kind string) float64 {
	switch kind {
	case topicConsensus:
		return 1
	case topicSyncInfo:
		return 0.5
	}
	return 0.2 // tx
}

// peerScoreParams scores peers on the node's topics: invalid messages
// weigh heavily (a rejected message is a provable fault), first deliveries
// earn a little, and time in the mesh a little more. Mesh delivery rates
// are not scored: the topics are too quiet for a rate to mean anything.
// Colocation is not penalised, since a testnet runs on one address. The
// invalid-message penalty is rej's application-specific score, computed
// like the router's P4 but without counting copies of the node's own
// messages that a peer relayed back (which go-libp2p-pubsub counts as
// invalid, and which a js-libp2p peer sends: it forwards to every mesh peer
// but the one it received the message from).
func peerScoreParams(topics map[string]string, rej *rejections) *pubsub.PeerScoreParams {
	p := &pubsub.PeerScoreParams{
		SkipAtomicValidation:      true,
		Topics:                    make(map[string]*pubsub.TopicScoreParams),
		TopicScoreCap:             50,
		AppSpecificScore:          rej.score,
		AppSpecificWeight:         1,
		IPColocationFactorWeight:  0,
		BehaviourPenaltyWeight:    -10,
		BehaviourPenaltyThreshold: 6,
		BehaviourPenaltyDecay:     pubsub.ScoreParameterDecay(10 * time.Minute),
		DecayInterval:             time.Second,
		DecayToZero:               0.01,
		RetainScore:               30 * time.Minute,
	}
	for kind, name := range topics {
		p.Topics[name] = &pubsub.TopicScoreParams{
			SkipAtomicValidation:         true,
			TopicWeight:                  topicWeight(kind),
			TimeInMeshWeight:             0.01,
			TimeInMeshQuantum:            time.Second,
			TimeInMeshCap:                300,
			FirstMessageDeliveriesWeight: 1,
			FirstMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(10 * time.Minute),
			FirstMessageDeliveriesCap:    20,
			// P4 is rej's: see above.
			InvalidMessageDeliveriesWeight: 0,
			InvalidMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(invalidMessageDecay),
		}
	}
	return p
}

// peerScoreThresholds: a peer that sent one invalid consensus message
// (-100) loses gossip; a few more and it is graylisted.
func peerScoreThresholds() *pubsub.PeerScoreThresholds {
	return &pubsub.PeerScoreThresholds{
		GossipThreshold:             -100,
		PublishThreshold:            -500,
		GraylistThreshold:           -1000,
		AcceptPXThreshold:           10,
		OpportunisticGraftThreshold: 3,
	}
}
