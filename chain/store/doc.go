// Package store is the durable state of a node: the blocks and quorum
// certificates of its block tree, its consensus safety data and its committed
// ledger (transactions, accumulator nodes, key/value state), in one bbolt
// file. It implements [ledger.Storage] for the ledger and gives consensus
// and the syncer, at start-up, the [RecoveryData] to rebuild the block tree
// from.
//
// Every value but the ledger's runs (see Layout) is the canonical CBOR
// encoding of chain/ (chain.Encode), decoded with chain.Decode under a size
// limit, so a damaged file gives an error wrapping [ErrCorrupt] that says
// what is wrong, never a panic.
// bbolt's fsync stays on: when a write method returns nil its transaction is
// on disk, and a process killed at any instant reopens either before or after
// each transaction, never in between.
//
// # Layout
//
// Top-level buckets and keys (ids are 32-byte hashes, versions 8-byte
// big-endian integers, so keys sort in version order):
//
//	meta     "schema"       uint64 SchemaVersion
//	         "chain_id"     string, the genesis' chain id
//	         "genesis_hash" chain.Hash of the genesis
//	blocks   block id                    -> chain.Block
//	qcs      certified block id          -> chain.QuorumCert
//	commits  committed block id          -> chain.Hash: the certified block id
//	                                        of a stored QC committing it
//	safety   "safety"                    -> SafetyData
//	ledger   "committed"                 -> [version, frontier, ledger info,
//	                                        state tree version]
//	         "pruned"                    -> [first version kept W, frontier
//	                                        of W, level-1 node over W-1 and
//	                                        W] once pruned (see prune.go)
//	txs      first version               -> tx run: the transactions of
//	                                        one commit (split past 64 Ki
//	                                        transactions or 32 MiB)
//	nodes    first version               -> node run: the accumulator nodes
//	                                        of level 2 or above the leaves
//	                                        of the tx run of the same key
//	                                        complete, 32 B each, in
//	                                        completion order
//	state    end version of a commit     -> state run: sorted key | version
//	                                        entries (see below)
//	archive  round                       -> committed block without payload,
//	                                        its info and its transaction
//	                                        count (appended in round order)
//	archive_ids committed block id       -> its round
//	state_values state key               -> version | value: the value of a
//	                                        key whose latest write was pruned
//	tx_hashes end version of its txs     -> run of sorted leaf hash | version
//	                                        entries of 262,144 transactions:
//	                                        the transactions by tx_hash, for
//	                                        GET /tx/{hash}; the newer ones
//	                                        are in memory (see txindex.go)
//	tree_nodes version                   -> the state tree's nodes that the
//	                                        update of that version wrote,
//	                                        sorted by depth and path, with an
//	                                        offset table (see statenodes.go)
//	tree_stale version                   -> the nodes that update made stale,
//	                                        deleted by a prune past it
//
// Schema 4 added the state tree; a file of an earlier schema is refused,
// its chain's block infos having no state root.
//
// Runs are not CBOR: a run is count uint32 | end offset uint32 per item |
// items, decoded with bounds checks (node runs are bare hashes). Each is the
// only value of a nested bucket named by its key, because bbolt rewrites
// every value of a page it modifies: a commit then writes its own runs and
// no earlier one. A run is found by its floor key (the last key not above
// the version sought); the position of node (level, index) in its run
// follows from the number of nodes of a tree of v leaves, 2v − popcount(v),
// applied to the tree whose leaves are the level-2 subtrees (v >> 2 of
// them). A node of level 0 or 1 is not stored: it is hashed again from the
// one or two transactions it covers, which is all a chunk proof needs of
// them, and saves 48 of the 64 bytes of nodes per transaction.
//
// The state is an index from key to the version of the transaction that
// wrote it last (a value is read from that transaction, or from
// state_values once that transaction was pruned), kept as a small
// log-structured merge tree: each commit adds one sorted run of its writes,
// merged with the newest runs while they hold no more entries than the merge
// so far and the result stays within 2^18 entries. An entry is rewritten at
// most about log2(2^18/writes per commit) times, sequentially, where a B-tree
// of keys would rewrite a random page per write; a run that reached the bound
// is never merged again, so a commit's memory and work do not grow with the
// state. A lookup searches every run whose key range holds the key, newest
// first.
//
// bbolt reads through a shared memory map of the file; the pages a
// transaction reads stay resident in the process. The store releases them
// (MADV_DONTNEED, on Linux) after every 64 MiB of pages written, and after
// reads alone grew the process's resident file-backed memory by 64 MiB (a
// fault maps in up to 64 KiB of cached neighbours, so scattered lookups
// soon map most of a large file), from inside a transaction so that bbolt
// cannot remap the file meanwhile. Write
// transactions encode their runs in buffers the store keeps between them
// (at most 4, of at most 8 MiB each) rather than in fresh allocations.
//
// # Transactions
//
// Each of these is exactly one atomic bbolt transaction:
//
//   - Open of a new file: every bucket, the meta keys, the genesis block and
//     the genesis QC (which certifies and commits the genesis block).
//   - SaveTree: blocks, QCs and commit index entries. A QC must certify a block
//     stored or saved with it.
//   - PruneTree: the blocks, the QCs certifying them and the commit index
//     entries of them or pointing at their QCs.
//   - SaveSafetyData.
//   - Commit: the version check, the transactions, the nodes, the state
//     writes (and run merges), the archived blocks, and the new version,
//     frontier and ledger info.
//   - CommitTree: what SaveTree, Commit and PruneTree write, in that order,
//     in one transaction (a block store's insert and the commit it brings).
//
// Recover and the other readers run in one read transaction each and never
// block writers.
//
// # Recovery rules
//
// Recover derives, from the durable ledger and the stored tree:
//
//  1. Root: the block whose id is the ledger's committed
//     LedgerInfo.CommitInfo.ID (the genesis block while the ledger has no
//     ledger info). Root.QC is the stored QC certifying it, and its certified
//     BlockInfo must equal the ledger's commit info exactly; Root.LedgerInfo
//     is the stored QC committing it (the genesis QC for genesis). When the
//     ledger's version is the commit info's version, the root of its frontier
//     must be the commit info's executed state id. Anything missing or
//     different is ErrCorrupt, e.g. "store: corrupt: root block 1a2b3c4d
//     (ledger commit at version 300, round 12) is missing".
//  2. Blocks and QCs: every stored block descending from the root (found
//     through a children index, in O(n)), sorted by round so parents come
//     before children, and the stored QCs certifying them.
//  3. SyncTarget: the persisted 3-chain of an interrupted fast-forward. Among
//     the stored commit certificates C2 whose 3-chain B0 ← B1 ← B2 (B2
//     certified by C2, B0 committed by it) and QCs C0, C1 certifying B0 and B1
//     are all stored, that commit a round above the root's and a version not
//     below the ledger's, and whose B0 does not descend from the root (a
//     descendant is reached by executing the tree instead), take the one of
//     the highest committed round. While the ledger is mid-sync (its version
//     is past its ledger info's) the descent condition is dropped: the
//     applied chunks must be completed toward a stored 3-chain. The caller
//     resumes state sync toward C2 from the ledger's current version, keeping
//     the chunks already applied, and then rebuilds its tree with root
//     (B0, C0, C2). A ledger that is mid-sync with
//     no such 3-chain is ErrCorrupt.
//  4. Stale: every other stored block (ancestors of the root, other
//     branches). They are safe to PruneTree.
//
// A QC whose certified block is missing, a block or QC stored under the wrong
// key, an undecodable value, a commit index entry whose QC does not commit its
// key, or a ledger whose frontier does not have one hash per 1 bit of its
// version are all ErrCorrupt.
//
// The usage at start-up:
//
//	st, err := store.Open(path, genesis)
//	rd, err := st.Recover()
//	if rd.SyncTarget != nil {
//		// state-sync toward rd.SyncTarget.QCs[2], then SaveTree/PruneTree
//	}
//	err = st.PruneTree(rd.Stale)
//	// rebuild the block tree from rd.Root, rd.Blocks, rd.QCs; load rd.Safety
package store
