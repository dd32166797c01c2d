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
	log      *slog.Logger
	result   func(topic string, r pubsub.ValidationResult) // counts results
}

// startGossip creates the GossipSub router of h with strict signing and
// peer scoring, joins the chain's topics with their validators and
// subscribes to them. ctx ends the router.
func startGossip(ctx context.Context, h host.Host, chainID string, v *validators, log *slog.Logger) (*gossip, error) {
	names := map[string]string{
		topicSyncInfo:  protocol.SyncInfoTopic(chainID),
		topicConsensus: protocol.ConsensusTopic(chainID),
		topicTx:        protocol.TxTopic(chainID),
	}
	ps, err := pubsub.NewGossipSub(ctx, h,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithPeerScore(peerScoreParams(names), peerScoreThresholds()),
		pubsub.WithMaxMessageSize(maxPubsubMessage),
		pubsub.WithPeerExchange(true),
		pubsub.WithLogger(log),
	)
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

func (v *validators) validateSyncInfo(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	if msg.Local {
		return pubsub.ValidationAccept
	}
	m, err := protocol.DecodeSyncInfoMsg(msg.Data)
	if err == nil {
		err = v.verifier.VerifySyncInfo(&m.SyncInfo)
	}
	msg.ValidatorData = m
	return v.verdict(topicSyncInfo, msg.GetFrom(), err)
}

func (v *validators) validateConsensus(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	if msg.Local {
		return pubsub.ValidationAccept
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
	if msg.Local {
		return pubsub.ValidationAccept
	}
	m, err := protocol.DecodeTxMsg(msg.Data)
	msg.ValidatorData = m
	return v.verdict(topicTx, msg.GetFrom(), err)
}

// peerScoreParams scores peers on the node's topics: invalid messages
// weigh heavily (a rejected message is a provable fault), first deliveries
// earn a little, and time in the mesh a little more. Mesh delivery rates
// are not scored: the topics are too quiet for a rate to mean anything.
// Colocation is not penalised, since a testnet runs on one address.
func peerScoreParams(topics map[string]string) *pubsub.PeerScoreParams {
	p := &pubsub.PeerScoreParams{
		Topics:                    make(map[string]*pubsub.TopicScoreParams),
		TopicScoreCap:             50,
		AppSpecificScore:          func(peer.ID) float64 { return 0 },
		AppSpecificWeight:         1,
		IPColocationFactorWeight:  0,
		BehaviourPenaltyWeight:    -10,
		BehaviourPenaltyThreshold: 6,
		BehaviourPenaltyDecay:     pubsub.ScoreParameterDecay(10 * time.Minute),
		DecayInterval:             time.Second,
		DecayToZero:               0.01,
		RetainScore:               30 * time.Minute,
	}
	weights := map[string]float64{topicSyncInfo: 0.5, topicConsensus: 1, topicTx: 0.2}
	for kind, name := range topics {
		p.Topics[name] = &pubsub.TopicScoreParams{
			SkipAtomicValidation:           true,
			TopicWeight:                    weights[kind],
			TimeInMeshWeight:               0.01,
			TimeInMeshQuantum:              time.Second,
			TimeInMeshCap:                  300,
			FirstMessageDeliveriesWeight:   1,
			FirstMessageDeliveriesDecay:    pubsub.ScoreParameterDecay(10 * time.Minute),
			FirstMessageDeliveriesCap:      20,
			InvalidMessageDeliveriesWeight: -100,
			InvalidMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(time.Hour),
		}
	}
	return p
}

// peerScoreThresholds: a peer that sent one invalid message (-100 times the
// topic weight) loses gossip; a few more and it is graylisted.
func peerScoreThresholds() *pubsub.PeerScoreThresholds {
	return &pubsub.PeerScoreThresholds{
		GossipThreshold:             -100,
		PublishThreshold:            -500,
		GraylistThreshold:           -1000,
		AcceptPXThreshold:           10,
		OpportunisticGraftThreshold: 3,
	}
}
