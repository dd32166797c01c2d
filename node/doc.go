// Package node is the composition root of p2pnode and owns all libp2p I/O:
// the host, GossipSub topics and their validators, stream handlers that serve
// blocks, chunks and votes, the mempool, and the HTTP endpoints for status,
// metrics and transaction submission.
package node
