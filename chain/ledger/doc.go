// Package ledger is the state computer of a node: it executes blocks
// speculatively, commits a path of executed blocks, serves committed
// transactions in chunks with proofs, and verifies and applies such chunks to
// state-sync a node that lags behind. It owns the ledger's transactions, its
// transaction accumulator and its key/value state; a [Storage] keeps them
// durably (chain/store on bbolt, [MemStorage] in memory).
//
// The usage loop of consensus:
//
//	info, err := l.Execute(block)             // vote with info
//	...
//	err = l.Commit(pathToCommitted, qc.LedgerInfo())
//	l.Forget(prunedIDs...)
//
// and of state sync, against a ledger info whose signatures were verified:
//
//	for l.Version() < target.LedgerInfo.CommitInfo.Version {
//		c, err := peer.GetChunk(l.Version(), target.LedgerInfo.CommitInfo.Version, batch)
//		err = l.ApplyChunk(c, target) // *chain.VerifyError: penalise the peer
//	}
//	if l.Committed() != target.LedgerInfo.CommitInfo {
//		err = l.FastForward(target) // the target's last blocks had no transaction
//	}
//
// # Transactions and execution
//
// A transaction is an opaque byte string of 1 to chain.MaxTxSize bytes.
// Every transaction of a committed block enters the ledger, in block order;
// the ledger's version is the number of its transactions, and transaction i
// (counting from 0) has version i. A transaction of the key/value form
//
//	0x01 | uvarint(len(key)) | key | value
//
// with 1 ≤ len(key) ≤ chain.MaxKeySize (the value is the rest of the
// transaction, possibly empty) writes value under key in the state; any
// other transaction changes no state. Writes are blind: execution never reads
// the state and no transaction fails. Within a ledger the last write of a key
// wins.
//
// Executing a block appends the leaf of each of its transactions to the
// accumulator of its parent; the block's executed state id is the root of the
// result and its version the size (see [chain.BlockInfo]). The genesis block
// has no transaction: its executed state id is chain.EmptyAccumulatorRoot,
// SHA-256 of the empty string, and its version 0.
//
// # The state root
//
// A block's info also carries the root of the state tree (chain/statetree)
// after it, the state_root that a ledger info signs with the rest; the
// empty state's is chain.EmptyStateRoot. Consensus computes it per block
// ([Ledger.Execute]), on the trees of the block's uncommitted ancestors,
// and a commit stores those trees. A sync, whose blocks a quorum certified,
// does not: [Ledger.ExecuteCertified] computes the accumulator and takes
// the quorum's state root, and commits of such blocks store no tree. The
// durable tree then lags the transactions (Storage's TreeVersion) until
// [Ledger.Settle] brings it up in a few large updates, read back from the
// stored transactions, and checks its root at the committed version
// against the signed one (ErrStateRoot). The transactions were verified
// against the signed accumulator root by then, so a mismatch is never a
// peer's fault. Executing a block in full on a lagging tree settles first.
// State-sync chunks, likewise, leave the tree to follow.
//
// # The transaction accumulator
//
// The accumulator is the RFC 6962 (section 2.1) Merkle tree over all the
// ledger's transactions in version order, with SHA-256:
//
//	leaf(tx)    = SHA-256(0x00 || tx)
//	node(l, r)  = SHA-256(0x01 || l || r)
//	MTH({})     = SHA-256("")
//	MTH({d0})   = leaf(d0)
//	MTH(D[0:n]) = node(MTH(D[0:k]), MTH(D[k:n])), k the largest power of 2 < n
//
// Node (level, index) is the root of the perfect subtree over versions
// [index·2^level, (index+1)·2^level); level 0 nodes are leaves. The compact
// range of [b, e) is the shortest list of perfect subtrees that cover exactly
// the versions [b, e), left to right: first nodes of increasing level that
// align b, then nodes of decreasing level down to e (this is
// compact.RangeNodes of github.com/transparency-dev/merkle). For b = 0 it has
// one node per 1 bit of e, the largest first, and is called the frontier of a
// tree of size e: it suffices to append to the tree and to compute its root,
// folding from the right: h = last; for each earlier hash x, h = node(x, h).
//
// # Chunks and their proof
//
// A [Chunk] carries the transactions of versions [StartVersion, End) with
// End = StartVersion + len(Txs), and a proof that they are the transactions
// of those versions in the tree of size Target:
//
//   - Left: the hashes of the compact range of [0, StartVersion), in order;
//   - Right: the hashes of the compact range of [End, Target), in order.
//
// A node of version V (frontier F) that state-syncs towards a ledger info
// whose commit info has version T and executed state id R, and whose
// signatures it verified, accepts a chunk if and only if ([VerifyChunk]):
//
//  1. StartVersion = V, Target = T, 1 ≤ len(Txs) ≤ MaxChunkTxs, every
//     transaction has 1 to chain.MaxTxSize bytes, they sum to at most
//     MaxChunkBytes, and End ≤ T;
//  2. len(Left) and len(Right) are the sizes of the compact ranges of
//     [0, V) and [End, T), and Left equals F hash by hash;
//  3. appending leaf(Txs[0]), …, leaf(Txs[n-1]) to F gives the frontier of
//     [0, End); merging Right into it gives the compact range of [0, T); the
//     root folded from it equals R.
//
// Because F is the node's own frontier, a chunk it accepts extends exactly
// the ledger it has: the accepted transactions are those of the signed
// ledger, and the frontier of step 3 is its new frontier. Every node the
// appends complete (leaves included) is stored, so a node that state-synced
// serves chunks like any other: a server reads Left and Right as stored
// nodes, since both ranges consist of perfect subtrees of the tree of size
// Version. Keeping the leaves costs 32 bytes a transaction and spares the
// server from re-reading and re-hashing transactions for a proof.
//
// A chunk that reaches T also commits the ledger info: it is stored in the
// same atomic batch as the chunk, and the ledger's committed block becomes
// the ledger info's commit info. A crash between chunks leaves a ledger whose
// version is past its committed block; state sync resumes from that version.
package ledger
