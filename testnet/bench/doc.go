// Package bench measures how fast a fresh node catches up, in one process,
// over the real protocols: `p2pnode bench sync`.
//
// A run builds (or finds in its cache) a valid signed chain of N blocks
// with chaintest, streaming it to a file: the encoded blocks in height
// order, an index of ids and offsets, and the last QC. P serving hosts —
// real libp2p hosts on loopback, the first V of them with the validators'
// identities so that they are the QCs' signers — answer the block and
// chunk protocols from that file with pread, adding the configured latency
// once per message: a server sleeps that long before it writes each
// response. The chain is never held in memory: serving it costs page
// cache, not resident memory of the process. Built chains stay in
// Config.CacheDir, keyed by their parameters, for the next run.
//
// With Config.Link set, the serving hosts and the syncing node run instead
// on a simulated packet network (github.com/marcopolo/simnet, QUIC over
// its links, in real time): each host behind a link of that bandwidth up
// and down, each packet taking half the round-trip time one way, so that
// bandwidth, delay and the bandwidth-delay product are real to the
// transport's congestion and flow control. A run then reports goodput:
// the encoded blocks synced per second, and that as a fraction of the
// link's bandwidth. The links' token buckets hold 64 KiB (not one packet),
// so that timers that fire late in real time do not lose capacity; on a
// busy machine the model is still slower than its nominal bandwidth.
//
// In block mode a run measures, in this order:
//
//   - the ceiling: the same blocks read from the file, decoded, verified
//     (chain.Verifier.VerifyBlocks, spread over GOMAXPROCS goroutines) and
//     executed and stored (blockstore.InsertChain) in batches on a fresh
//     store, with no network;
//   - the seed baseline: a fresh node with syncer.SeedConfig (one block per
//     request, one request at a time, the author first) catches up a prefix
//     of the chain over the network;
//   - the sync: a fresh node with syncer.DefaultConfig catches up the whole
//     chain with one SyncTo.
//
// In state-sync mode the servers hold the ledger of the chain's N×T
// transactions and the node fast-forwards to it; the ceiling verifies and
// applies the same chunks with no network.
//
// In snapshot mode the node fast-forwards by snapshot sync: after the
// committed 3-chain it restores the state at the committed version, in
// chunks of leaves with range proofs against the signed state root,
// instead of replaying the history (Config.StateKeys makes a history much
// longer than its state). The servers answer from a snapshot file built
// once beside the chain: the state replayed from the chain's
// transactions, its leaves sorted by key hash, the chunks the syncer asks
// for with their proofs and, with the first, the accumulator frontier;
// the root is checked against the chain's committed state root, every
// chunk as a restoring client checks it. The ceiling restores the same
// chunks into a fresh store with no network; there is no seed baseline.
//
// Memory and CPU: before each measured phase the heap is returned to the
// operating system and, on Linux, the process's peak resident set is reset
// (/proc/self/clear_refs); getrusage then gives the phase's peak. The
// reported peak_rss_mb is that of the sync phase: the syncing node and the
// serving hosts together. cpu_s is the process CPU time (user+system) of
// the sync phase, serving hosts included.
//
// Usage:
//
//	res, err := bench.Run(ctx, bench.DefaultConfig(), os.Stderr)
//	if err != nil { ... }
//	line, _ := json.Marshal(res)
//	fmt.Println(string(line))
package bench
