// Package protocol defines the p2pnode wire: message types, protocol IDs and
// pubsub topic names (scoped by chain id), uvarint length-prefixed framing,
// strict canonical-CBOR decoding with size limits, and version negotiation.
//
// It holds pure data and codecs only. It contains no libp2p host, swarm or
// pubsub code; those live in package node.
package protocol
