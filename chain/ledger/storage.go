package ledger

import (
	"github.com/transparency-dev/merkle/compact"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/statetree"
)

// Storage is the durable part of a ledger. chain/store implements it on
// bbolt; [MemStorage] implements it in memory. The ledger is its only writer.
// Implementations must be safe for concurrent readers while Commit runs.
type Storage interface {
	// Committed returns the summary of the durable ledger; the zero
	// Committed for an empty one.
	Committed() (Committed, error)
	// Txs returns the committed transactions of versions [start, start+n).
	Txs(start, n uint64) ([][]byte, error)
	// Nodes returns the hashes of committed accumulator nodes, in order. Every
	// node named was reported in an earlier Batch.
	Nodes(ids []compact.NodeID) ([]chain.Hash, error)
	// Get returns the committed value of key in the state, and whether it is
	// set.
	Get(key []byte) ([]byte, bool, error)
	// TxVersion returns the version of the stored transaction whose
	// accumulator leaf hash is h (the latest, if it was stored more than
	// once), and whether there is one.
	TxVersion(h chain.Hash) (uint64, bool, error)
	// Commit durably applies b: all of it, or nothing if it returns an error.
	Commit(b *Batch) error
	// Block returns an archived committed block by id.
	Block(id chain.Hash) (*CommittedBlock, bool, error)
	// BlocksFrom returns up to limit archived committed blocks of round
	// fromRound or above, in round order.
	BlocksFrom(fromRound uint64, limit int) ([]CommittedBlock, error)
	// NodeReader reads the state tree's committed nodes: those of every
	// Batch.Tree written and not pruned. The tree of Committed().TreeVersion
	// T is whole (its root is the node {T, depth 0}; none at version 0,
	// the empty tree).
	statetree.NodeReader
}

// CommittedBlock is a committed block with its executed info, as archived
// by the ledger's storage so that the node can serve committed blocks to
// peers that catch up block by block and list its committed chain.
type CommittedBlock struct {
	_     struct{} `cbor:",toarray"`
	Block *chain.Block
	Info  chain.BlockInfo
}

// Committed summarises a durable ledger.
type Committed struct {
	// Version is the number of committed transactions.
	Version uint64
	// Frontier is the accumulator's compact range at Version.
	Frontier []chain.Hash
	// LedgerInfo is the latest signed ledger info whose commit info the
	// ledger reached; nil while the ledger is at genesis. During state sync
	// Version may be past LedgerInfo.CommitInfo.Version: transactions up to
	// Version are applied and verified, but no later block is committed yet.
	LedgerInfo *chain.LedgerInfoWithSignatures
	// TreeVersion is the version of the stored state tree: at most
	// Version. The tree follows the transactions, in large updates, when
	// a sync defers it.
	TreeVersion uint64
}

// Node is one accumulator node: the root of a perfect subtree.
type Node struct {
	ID   compact.NodeID
	Hash chain.Hash
}

// KV is one state write: Value under Key, written by the transaction of
// version Version.
type KV struct {
	Key, Value []byte
	Version    uint64
}

// Batch is one atomic append to the durable ledger.
type Batch struct {
	// StartVersion is the version of Txs[0]; it equals the committed Version.
	StartVersion uint64
	// Txs are the appended transactions, in order.
	Txs [][]byte
	// Nodes are exactly the accumulator nodes the append completes, in
	// completion order: each leaf, then the roots of the perfect subtrees
	// its append closes, by increasing level.
	Nodes []Node
	// Writes are the state writes of Txs, sorted by key, one per key: the
	// last write of the key, Version naming its transaction. A storage may
	// keep Version and read the value from the transaction.
	Writes []KV
	// Frontier is the accumulator's compact range after the append.
	Frontier []chain.Hash
	// LedgerInfo, if not nil, becomes the committed ledger info.
	LedgerInfo *chain.LedgerInfoWithSignatures
	// Blocks are the committed blocks whose transactions Txs are, oldest
	// first, to archive (none for a state-sync chunk).
	Blocks []CommittedBlock
	// Tree are updates of the state tree, oldest first, with increasing
	// versions above the stored tree's version, at most the version after
	// the append; the last becomes Committed().TreeVersion. Each has the
	// nodes to store, and the nodes it makes stale, recorded by the
	// version since which they are (see [statetree.StaleNode]). A batch
	// may carry none (the tree then lags) or consist of them alone.
	Tree []*statetree.Batch
}
