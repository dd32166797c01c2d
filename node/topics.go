package node

import (
	"context"
	"errors"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/protocol"
)

// readTopic delivers the messages of one subscription until ctx ends.
// Messages arrive validated, their decoded value in ValidatorData; the
// node's own messages are skipped (the engine handles its own).
func (n *Node) readTopic(ctx context.Context, sub *pubsub.Subscription) {
	for {
		msg, err := sub.Next(ctx)
		if err != nil {
			return // ctx ended or the subscription was cancelled
		}
		if msg.Local || msg.ReceivedFrom == n.host.ID() {
			continue
		}
		from := msg.GetFrom()
		switch m := msg.ValidatorData.(type) {
		case *protocol.SyncInfoMsg:
			n.peers.note(&m.SyncInfo)
			n.offerSync(&m.SyncInfo, from)
		case *protocol.ConsensusMsg:
			if m.Proposal != nil {
				n.peers.note(&m.Proposal.SyncInfo)
			} else if m.Timeout != nil {
				n.peers.note(&m.Timeout.SyncInfo)
			}
			n.onConsensus(m, from)
		case *protocol.TxMsg:
			added := 0
			for _, tx := range m.Txs {
				if n.mempool.Add(tx) == nil {
					added++
				}
			}
			if added < len(m.Txs) {
				n.log.Debug("gossiped txs not added", "peer", from, "txs", len(m.Txs), "added", added)
			}
		}
	}
}

// offerSync hands a verified SyncInfo to the sync worker, which syncs if
// it is ahead of the node.
func (n *Node) offerSync(si *chain.SyncInfo, from peer.ID) {
	if w := n.worker.Load(); w != nil {
		w.offer(si, from)
	}
}

// onConsensus hands a proposal or timeout to consensus on a validator; the
// SyncInfo it carries lets a full node follow the chain round by round.
func (n *Node) onConsensus(m *protocol.ConsensusMsg, from peer.ID) {
	if p := m.Proposal; p != nil {
		n.mempool.MarkInFlight(p.Block.Payload())
	}
	if n.engine != nil {
		n.engine.HandleMsg(m, from)
		return
	}
	if p := m.Proposal; p != nil {
		n.offerSync(&p.SyncInfo, p.Block.Author())
	} else {
		n.offerSync(&m.Timeout.SyncInfo, m.Timeout.Signature.Signer)
	}
}

// announce publishes the node's SyncInfo when it changes (a new highest
// QC, a commit, a finished sync) and every SyncInfoInterval, until ctx ends.
func (n *Node) announce(ctx context.Context, g *gossip) {
	t := time.NewTicker(n.cfg.SyncInfoInterval)
	defer t.Stop()
	var last syncProgress
	for {
		periodic := false
		select {
		case <-ctx.Done():
			return
		case <-n.changed:
		case <-t.C:
			periodic = true
		}
		// The timeout certificates live in consensus; gossip carries QCs.
		si := n.opened.Blocks.SyncInfo(nil)
		p := progressOf(&si)
		if !periodic && p == last {
			continue
		}
		last = p
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := publish(pctx, g.syncInfo, &protocol.SyncInfoMsg{SyncInfo: si})
		cancel()
		if err != nil && !errors.Is(err, context.Canceled) {
			n.log.Debug("publish sync info", "err", err)
		}
	}
}
