package protocol

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/protocol"
)

// Protocol ids and topic names are scoped by chain id and versioned, so nodes
// of two chains never talk past each other and a new version can run beside
// an old one. docs/protocol.md lists them.

// BlocksID is the block retrieval stream protocol of a chain.
func BlocksID(chainID string) protocol.ID {
	return protocol.ID(fmt.Sprintf("/p2pnode/%s/blocks/1.0.0", chainID))
}

// ChunksID is the ledger chunk stream protocol of a chain.
func ChunksID(chainID string) protocol.ID {
	return protocol.ID(fmt.Sprintf("/p2pnode/%s/chunks/1.0.0", chainID))
}

// VoteID is the stream protocol that carries votes to the next leader.
func VoteID(chainID string) protocol.ID {
	return protocol.ID(fmt.Sprintf("/p2pnode/%s/vote/1.0.0", chainID))
}

// SyncInfoTopic is the GossipSub topic of SyncInfo announcements.
func SyncInfoTopic(chainID string) string { return fmt.Sprintf("/p2pnode/%s/syncinfo/1", chainID) }

// ConsensusTopic is the GossipSub topic of proposals and timeouts.
func ConsensusTopic(chainID string) string { return fmt.Sprintf("/p2pnode/%s/consensus/1", chainID) }

// TxTopic is the GossipSub topic of transactions.
func TxTopic(chainID string) string { return fmt.Sprintf("/p2pnode/%s/tx/1", chainID) }

// CommittedID is the committed-range stream protocol of a chain.
func CommittedID(chainID string) protocol.ID {
	return protocol.ID(fmt.Sprintf("/p2pnode/%s/committed/1.0.0", chainID))
}

// StateID is the state snapshot stream protocol of a chain.
func StateID(chainID string) protocol.ID {
	return protocol.ID(fmt.Sprintf("/p2pnode/%s/state/1.0.0", chainID))
}
