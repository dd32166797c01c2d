package protocol

// StreamLimit is the frame limits of one stream protocol: the largest
// request and response bodies a receiver reads before it resets the stream.
// MaxResponse is 0 for a protocol that has no response.
type StreamLimit struct {
	// Name is the protocol's name in its id, /p2pnode/<chain>/<Name>/1.0.0.
	Name        string
	MaxRequest  int
	MaxResponse int
}

// StreamLimits returns the limits of every stream protocol, in the order of
// the table in docs/protocol.md section 5, which a test checks against them.
func StreamLimits() []StreamLimit {
	return []StreamLimit{
		{Name: "blocks", MaxRequest: MaxBlockRequestSize, MaxResponse: MaxBlockResponseSize},
		{Name: "committed", MaxRequest: MaxCommittedRequestSize, MaxResponse: MaxCommittedResponseSize},
		{Name: "chunks", MaxRequest: MaxChunkRequestSize, MaxResponse: MaxChunkResponseSize},
		{Name: "state", MaxRequest: MaxStateRequestSize, MaxResponse: MaxStateResponseSize},
		{Name: "vote", MaxRequest: MaxVoteMsgSize},
	}
}

// GossipLimit is the largest data of one message of a gossip topic.
type GossipLimit struct {
	// Message is the CDDL name of the topic's message.
	Message string
	Max     int
}

// GossipLimits returns the limits of the gossip messages, in the order of
// the table in docs/protocol.md section 8.1.
func GossipLimits() []GossipLimit {
	return []GossipLimit{
		{Message: "consensus-msg", Max: MaxConsensusMsgSize},
		{Message: "vote-msg", Max: MaxVoteMsgSize},
		{Message: "sync-info-msg", Max: MaxSyncInfoMsgSize},
		{Message: "tx-msg", Max: MaxTxMsgSize},
	}
}
