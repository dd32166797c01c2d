package consensus

import (
	"context"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/store"
	"github.com/p2pnode/p2pnode/protocol"
	"github.com/p2pnode/p2pnode/syncer"
)

// LeaderElection names the leader of each round. Every validator must get
// the same answer for the same round, from data all of them share (the
// validator set, the committed chain), or rounds end in timeouts. A
// reputation-based scheme (leaders chosen among the authors and signers of
// recently committed blocks) fits behind this interface; [RoundRobin] is the
// default. The Engine calls it from its own goroutine only.
type LeaderElection interface {
	Leader(round uint64) peer.ID
}

// RoundRobin is the deterministic round-robin leader election over a
// validator set: with ids the members' ids sorted, the leader of round r is
// ids[r mod len(ids)]. It is immutable and safe for concurrent use.
type RoundRobin struct {
	ids []peer.ID
}

// NewRoundRobin returns the round-robin election over vs.
func NewRoundRobin(vs *chain.ValidatorSet) *RoundRobin {
	return &RoundRobin{ids: vs.IDs()}
}

// Leader returns ids[round mod n].
func (rr *RoundRobin) Leader(round uint64) peer.ID {
	return rr.ids[round%uint64(len(rr.ids))]
}

// Mempool supplies the transactions of proposals. Pull returns at most
// maxTxs transactions of at most maxBytes summed bytes, in the order they
// should be executed; the engine drops anything past those bounds or of an
// invalid size. It is called from the engine's goroutine when this node
// leads a round, and must not block for long.
type Mempool interface {
	Pull(maxTxs, maxBytes int) [][]byte
}

// SafetyStorage persists the safety data of the voting rules. The engine
// saves before any vote or timeout leaves the node; a save that returns nil
// must be durable. *store.Store implements it.
type SafetyStorage interface {
	SafetyData() (store.SafetyData, error)
	SaveSafetyData(store.SafetyData) error
}

// Syncer catches the node up to a SyncInfo ahead of its own, fetching from
// the given peer first; ctx's deadline bounds the sync. It verifies si
// before use. *syncer.Manager implements it.
type Syncer interface {
	SyncTo(ctx context.Context, si *chain.SyncInfo, from peer.ID) error
}

// Network sends consensus messages. Package node implements it over
// GossipSub (Broadcast) and the vote stream protocol (SendVote); tests use
// in-memory routers. Both methods are called from the engine's goroutine
// and must not block for long: a message that cannot be sent now is
// dropped (the protocol recovers through timeouts). Broadcast sends to
// every other validator, not to the sender; the engine handles its own
// messages itself. The engine never modifies a message after handing it
// over.
type Network interface {
	Broadcast(msg *protocol.ConsensusMsg)
	SendVote(to peer.ID, msg *protocol.VoteMsg)
}

var (
	_ SafetyStorage = (*store.Store)(nil)
	_ Syncer        = (*syncer.Manager)(nil)
)
