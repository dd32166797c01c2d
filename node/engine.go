package node

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/consensus"
	"github.com/p2pnode/p2pnode/protocol"
)

// Vote delivery bounds.
const (
	// maxVoteSends caps the votes being sent at once; a vote beyond it is
	// dropped (consensus recovers through timeouts).
	maxVoteSends = 64
	// voteSendTimeout bounds one vote's delivery.
	voteSendTimeout = 2 * time.Second
)

// newEngine builds the consensus engine of a validator node.
func (n *Node) newEngine(log *slog.Logger) (*consensus.Engine, error) {
	signer, err := chain.NewSigner(n.cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("node: validator key: %w", err)
	}
	ccfg := n.cfg.Consensus
	ccfg.Logger = log.With("logger", "p2pnode/consensus")
	e, err := consensus.New(consensus.Components{
		Signer:   signer,
		Verifier: n.verifier,
		Store:    n.opened.Blocks,
		Syncer:   timedSyncer{mgr: n.mgr, m: n.ops},
		Network: &consensusNet{
			n:     n,
			sends: make(chan struct{}, maxVoteSends),
			log:   log.With("logger", "p2pnode/consensus"),
		},
		Safety:  n.opened.Disk,
		Mempool: n.mempool,
	}, ccfg)
	if err != nil {
		return nil, fmt.Errorf("node: consensus: %w", err)
	}
	return e, nil
}

// consensusNet is consensus's network: proposals and timeouts on the
// consensus topic, votes on the vote stream protocol. Its methods never
// block for long: a message that cannot leave now is dropped.
type consensusNet struct {
	n     *Node
	sends chan struct{} // a semaphore of vote sends in flight
	log   *slog.Logger
}

var _ consensus.Network = (*consensusNet)(nil)

// Broadcast publishes msg on the consensus topic.
func (c *consensusNet) Broadcast(msg *protocol.ConsensusMsg) {
	g := c.n.gossip.Load()
	if g == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := publish(ctx, g.consensus, msg); err != nil {
		c.log.Debug("broadcast consensus message", "err", err)
	}
}

// SendVote delivers msg to the validator to on a stream of its own.
func (c *consensusNet) SendVote(to peer.ID, msg *protocol.VoteMsg) {
	select {
	case c.sends <- struct{}{}:
	default:
		c.log.Debug("vote dropped: too many in flight", "to", to, "round", msg.Vote.VoteData.Proposed.Round)
		return
	}
	go func() {
		defer func() { <-c.sends }()
		ctx, cancel := context.WithTimeout(context.Background(), voteSendTimeout)
		defer cancel()
		if err := c.sendVote(ctx, to, msg); err != nil {
			c.log.Debug("send vote", "to", to, "round", msg.Vote.VoteData.Proposed.Round, "err", err)
		}
	}()
}

func (c *consensusNet) sendVote(ctx context.Context, to peer.ID, msg *protocol.VoteMsg) error {
	defer c.n.ops.observeRequest("vote", sideClient, time.Now())
	s, err := c.n.host.NewStream(ctx, to, protocol.VoteID(c.n.cfg.Genesis.ChainID))
	if err != nil {
		return err
	}
	s = c.n.ops.count(s, "vote")
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	if err := protocol.WriteMsg(s, msg); err != nil {
		_ = s.Reset()
		return err
	}
	return s.Close()
}

// handleVote reads one vote and queues it for consensus.
func (n *Node) handleVote(s network.Stream) {
	from := s.Conn().RemotePeer()
	if err := s.Scope().SetService(voteService); err != nil {
		_ = s.Reset()
		return
	}
	_ = s.SetReadDeadline(time.Now().Add(n.cfg.Limits.RequestTimeout))
	var m protocol.VoteMsg
	if err := protocol.ReadMsg(s, protocol.MaxVoteMsgSize, &m); err != nil {
		n.log.Debug("bad vote message", "peer", from, "err", err)
		_ = s.Reset()
		return
	}
	_ = s.Close()
	n.engine.HandleVote(&m, from)
}
