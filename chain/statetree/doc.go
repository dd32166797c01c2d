// Package statetree is the authenticated state of the ledger: a versioned
// sparse Merkle tree over the SHA-256 hashes of the state's keys, in the
// manner of the Jellyfish Merkle tree of Diem/Aptos. Its root commits to
// every key/value pair of a version, so that any pair (or the absence of a
// key) can be proven against it, and a snapshot of a version can be sent in
// key-hash ranges that each verify against the root.
//
// The package is pure: it reads nodes through a [NodeReader] and returns
// the nodes an update writes as a [Batch] for the caller to store (in the
// same transaction as the rest of a commit); [MemStore] keeps them in
// memory and [Overlay] lays uncommitted batches over a store.
//
// The usage loop of a state computer, for each block:
//
//	b, err := tree.Update(parentVersion, version, writes) // sorted by key hash
//	overlay.Add(b)                                         // speculative
//	...                                                    // on commit:
//	store.Apply(b)                                         // with the ledger's batch
//
// of a server of proofs and snapshots:
//
//	leaf, proof, err := tree.Get(version, statetree.KeyHash(key))
//	leaves, err := tree.Leaves(version, from, n)
//	rp, err := tree.RangeProof(version, leaves[0].KeyHash, leaves[len(leaves)-1].KeyHash)
//
// and of a node that syncs the snapshot of a verified root:
//
//	r := statetree.NewRestorer(version, root)
//	for !r.Complete() {
//		kvs, rp := peer.GetStateChunk(version, after(r.Last()), n)
//		_, err := r.AddChunk(kvs, rp) // *chain.VerifyError: penalise the peer
//		store(r.Take())               // the chunk's final nodes
//	}
//	_, nodes := r.Finish()            // the last path and the root
//	store(nodes)
//
// ([RangeVerifier] verifies the same chunks without building nodes.)
//
// # The tree
//
// A key k has the path KeyHash(k) = SHA-256(k): 256 bits read from the most
// significant bit of its first byte, 0 to the left, 1 to the right, so that
// leaves in left-to-right order are sorted by key hash as big-endian
// numbers. The hash H(S, d) of the subtree at depth d holding the set S of
// leaves (all sharing the first d bits of their paths) is
//
//	H({}, d)      = Placeholder = 32 zero bytes
//	H({l}, d)     = LeafHash(l) = SHA-256("P2PNODE::StateLeaf/1" || KeyHash(l.key) || SHA-256(l.value))
//	H(S, d)       = NodeHash(H(S0, d+1), H(S1, d+1))          if |S| ≥ 2
//	NodeHash(a,b) = SHA-256("P2PNODE::StateNode/1" || a || b)
//
// where S0 and S1 are the leaves of S with bit d of their path 0 and 1. The
// root of a state is H(state, 0). A subtree with a single leaf is that
// leaf, whatever its depth: a leaf sits at the shallowest position where it
// is alone, and a path of n keys has about log2(n) nodes. The domain tags
// keep leaves and internal nodes apart, and no hash output is the
// placeholder, so a root binds its whole tree and a proof's shape cannot
// be forged.
//
// # Storage: versions and stale nodes
//
// Nodes are stored under a [NodeKey]: the version that wrote them and their
// position (depth and path bits), as in the Jellyfish Merkle tree. An
// update of version V from version B writes a new node at every position
// it changes, under V, and reads unchanged subtrees from older versions
// through the child references (version, kind, hash) of internal nodes.
// Every version has a root node at {V, depth 0}: the tree of any version
// that was stored and not pruned can be read and proven while later
// versions are written, which snapshot serving needs. Each node an update
// replaces is returned as a [StaleNode] with StaleSince = V; deleting the
// nodes stale since a version at or below W keeps every version ≥ W whole
// ([MemStore.Prune]). A leaf node holds the key and value themselves, so
// the tree of a version is a complete copy of its state, in key-hash order.
//
// An update takes the writes of a batch sorted by key hash and descends the
// tree once for all of them: the nodes shared by several paths are read and
// hashed once per batch, and the two halves of a large batch are hashed on
// separate goroutines (below depth 2, from 64 writes).
//
// # Proofs
//
// A [Proof] of a key hash K lists the siblings of the path of K, top down,
// to where the path ends: at a leaf (K's own, proving its value; or
// another one whose path starts with the same bits, proving K absent) or at
// an empty subtree (proving K absent). [VerifyInclusion] and
// [VerifyNonInclusion] fold the siblings from the end of the path up to
// the root, by the bits of K, and compare with the root.
//
// # Range proofs and snapshot chunks
//
// A [RangeProof] proves that a list of leaves sorted by key hash, from a
// first leaf F to a last leaf L, is every leaf of the tree between them. It
// carries the depths of F and L in the tree, the siblings of F's path that
// lie to its left (one per depth where F's bit is 1) and the siblings of
// L's path to its right (one per depth where L's bit is 0). The verifier
// recomputes the root: inside the range it hashes the leaves as H does; on
// F's and L's paths it takes the outer siblings from the proof, top down.
// A leaf left out, added or changed inside the range changes the root.
//
// A [RangeVerifier] checks a snapshot sent as consecutive chunks. After a
// chunk it keeps only its last leaf, that leaf's depth and the left
// siblings of its path (at most 256 hashes): from these it derives the
// left part of the next chunk's proof, assuming no leaf between the two
// chunks, and rejects the chunk (ErrGap) if the proof's left part differs.
// So chunks need no shared state beyond the last leaf verified, which also
// makes a sync resumable from the last stored chunk; the snapshot is
// complete when a chunk's right siblings are all empty. A [Restorer] goes
// further and does not trust the proof's left part at all: it builds the
// tree's nodes from the leaves as they come (a node is final, and emitted,
// once a leaf to its right arrives) and checks each chunk by folding its
// own left parts of the last leaf's path with the proof's right siblings
// into the root. Verifying and building thus share their hashes: about
// four SHA-256 a value (key, value, leaf, one internal node), the key and
// value hashes spread over two goroutines.
//
// # Why not a library
//
// The maintained Go sparse Merkle trees we could find (celestiaorg/smt and
// its forks, pokt-network/smt, the SMT of cosmos ics23's tools) keep one
// version per store, update key by key rather than by sorted batch, and
// have no range proofs; cosmos/iavl is versioned but an AVL tree, whose
// shape depends on insertion order, and none of them is in the module set
// this project builds from. The Rust Jellyfish crates have all of it but
// are not Go. The tree here is small (a few hundred lines) and follows the
// Jellyfish design where it matters for the protocol: the hash
// definitions, the single-leaf rule, versioned node keys with stale-node
// indices and Aptos' range proofs. Its nodes are binary (one per bit of
// the path) rather than 16-ary; this changes storage, never the hashes.
//
// # In the ledger
//
// A block info carries state_root(B), the tree's root after the writes of
// B and its ancestors, beside the accumulator root, so that the ledger
// info that commits B signs both its transactions and its state (the
// empty state's root is Placeholder). The tree's version is the ledger
// version after B (a block without transactions keeps its parent's tree;
// one whose transactions write nothing stores a copy of the root under its
// version).
//
//   - Execute (chain/ledger): the block's writes (last write per key,
//     sorted by key hash) go into tree.Update(parent's tree version, block
//     version, writes), read through the block's uncommitted ancestors'
//     batches over the store. Sibling blocks of one version write equal
//     node keys, so each block reads its own lineage, never a shared
//     overlay.
//   - Commit: ledger.Batch carries the committed blocks' tree batches;
//     chain/store writes each batch's nodes as one record (sorted, with an
//     offset table for a binary search) and its stale records as another,
//     in the transaction of the commit.
//   - Sync: blocks certified by a quorum take its state root unchecked,
//     their commits store no tree, and the tree follows in large updates
//     afterwards (ledger.Settle), its root checked at the committed
//     version. State-sync chunks likewise.
//   - Snapshot sync: state chunks {version, start key hash, max leaves}
//     are answered with leaves and a [RangeProof] from [Tree.Leaves] and
//     [Tree.RangeProof] (ledger.StateChunk) and fed to a Restorer
//     (ledger.SnapshotRestore); its nodes are stored with each chunk, one
//     record per chunk, with the restorer's position, so a killed sync
//     resumes.
//   - Pruning: a prune past version W deletes the nodes stale since W or
//     before, rewriting the records that lose some.
//   - Proofs: GET /state?key= answers the value, the tree
//     version, [Proof] (MarshalBinary, hex) and the signed ledger info; a
//     client checks the signatures, then [VerifyInclusion] or
//     [VerifyNonInclusion] with SHA-256(key) against its state_root.
//
// The cost. At a million keys an update of 100
// fresh keys changes 16.4 nodes a write (8.5 at 25,600 writes a batch, 5.4
// at 262,144), so a block of 100 writes costs about 1,800 SHA-256 (about
// 150 ns each here, with SHA-NI): at least 270 µs a block before any
// storage read, where the whole sync pipeline spends about 110 µs a block
// today and the commitment's budget is 30 µs. On two cores, from a
// MemStore (whose reads allocate nothing and follow its entries' hints
// down a path, a cache miss a node), an update costs 6.7 µs a write in a
// batch of 100 (1.3 ms a block, with its overlay and encoding), 3.2 µs at
// 25,600 and 2.9 µs at 262,144; hashing and reads are each about a fifth
// of the CPU time, the rest the update's own work and the collector.
// Through any other NodeReader each read allocates and finds its key
// (BenchmarkUpdateReader: 7.8 and 4.5 µs a write at 100 and 25,600, before
// a database's own cost). What the wiring needs first: replaying
// syncs batch the tree updates of many blocks (only the target's root is
// checked); a cache of the upper levels of the latest tree (each write
// reads about 15 nodes, a bbolt read costs about a microsecond); 16-ary
// stored nodes (as Jellyfish), about four times fewer node writes for the
// same hashes. Consensus-time execution keeps one update per block: a
// millisecond or so per 100 writes, cheap at consensus rates. The
// package's benchmarks (BenchmarkBlock, BenchmarkUpdate,
// BenchmarkUpdateReader) measure these.
package statetree
