// Package node is the composition root of p2pnode and owns all libp2p I/O:
// the host, GossipSub topics and their validators, stream handlers that serve
// blocks, chunks and votes, the mempool, and the HTTP endpoints for status,
// metrics and transaction submission.
//
// A node opens its store (chain/blockstore), builds a libp2p host (TCP and
// QUIC, Noise and TLS, yamux, a resource manager with explicit limits, a
// connection manager that never trims validators, and a Gater that tests
// use to partition nodes), a sync manager over streams (Network) and, when
// its key belongs to the validator set, a consensus engine:
//
//	n, err := node.New(cfg)          // store open, host listening
//	if err != nil { ... }
//	err = n.Run(ctx)                 // until ctx ends; then everything is closed
//
// Data flows one way: gossip in → SyncInfo → sync worker → block and chunk
// streams → verify → block store → consensus. The topic validators decode
// every message within its size limit and verify it before GossipSub
// forwards it: a provable fault (bad encoding, bad signature, forged QC) is
// rejected, which lowers the sender's peer score; what the node cannot judge
// yet (a soft verification failure, such as a future epoch) is ignored. A
// verified SyncInfo ahead of the node goes to the one sync worker, which
// keeps only the best pending offer while a sync runs and syncs from the
// message's author first.
//
// Goroutines: Run starts the sync worker, the bootstrapper (one goroutine
// per bootstrap peer), the SyncInfo announcer, the transaction broadcaster,
// the load generator, one reader per topic, the HTTP server and consensus;
// libp2p runs each inbound stream on a goroutine of its own, bounded by the
// resource manager. All of them end before Run returns.
package node
