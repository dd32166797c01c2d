package blocktree

import (
	"errors"
	"fmt"

	"github.com/p2pnode/p2pnode/chain"
)

var (
	// ErrMissingParent means a block's parent is neither the root nor in the
	// tree: fetch the parent first.
	ErrMissingParent = errors.New("blocktree: parent block not in tree")
	// ErrMissingBlock means a QC certifies a block that is not in the tree:
	// fetch and insert the block first.
	ErrMissingBlock = errors.New("blocktree: certified block not in tree")
	// ErrParentMismatch means a block does not extend its parent as the tree
	// knows it: its QC describes the parent differently, or its round is not
	// above the parent's.
	ErrParentMismatch = errors.New("blocktree: block does not extend its parent as the tree knows it")
	// ErrBelowRoot means a block or QC is at or below the root's round and is
	// not the root: it is older than the root or on a pruned branch, and can
	// never join the tree.
	ErrBelowRoot = errors.New("blocktree: block at or below the root's round")
	// ErrConflict means a block id already in the tree came again with a
	// different executed info.
	ErrConflict = errors.New("blocktree: block already in tree with another executed info")
	// ErrStateMismatch means a quorum certified a block (or committed one)
	// with an executed state other than the one this node computed: a
	// serious local fault that the caller must surface, not a peer fault.
	ErrStateMismatch = errors.New("blocktree: quorum certified another executed state")
	// ErrNotDescendant means a block is not a strict descendant of the root
	// (it is the root, or not in the tree).
	ErrNotDescendant = errors.New("blocktree: block is not a descendant of the root")
	// ErrBadRoot means a root (given to New or Rebuild, or made by Prune) is
	// inconsistent: its info, QC and ledger info do not describe one block.
	ErrBadRoot = errors.New("blocktree: inconsistent root")
	// ErrBadBlock means a block is nil or its executed info does not describe
	// it (id, epoch, round or timestamp differ).
	ErrBadBlock = errors.New("blocktree: executed info does not describe the block")
)

// Root is the tree's root: the last committed block, executed.
type Root struct {
	// Block is the committed block.
	Block *chain.Block
	// Info is Block as executed locally; it must equal QC.CertifiedBlock().
	Info chain.BlockInfo
	// QC certifies Block.
	QC chain.QuorumCert
	// LedgerInfo is a commit certificate whose CommitInfo() equals Info; for
	// genesis it is the genesis QC itself.
	LedgerInfo chain.QuorumCert
}

// ExecutedBlock is a block together with its locally executed info.
type ExecutedBlock struct {
	Block *chain.Block
	Info  chain.BlockInfo
}

type node struct {
	block    *chain.Block
	info     chain.BlockInfo
	qc       *chain.QuorumCert // certifies block; nil until a QC is inserted
	parent   *node             // nil for the root
	children []*node
	depth    uint64 // parent's depth + 1; only differences of depths matter
}

// Tree is the in-memory tree of verified, executed blocks and their quorum
// certificates, rooted at the last committed block. It checks structure —
// parent links, rounds, presence, and that every QC certifies the block as
// it was executed here — never signatures: callers insert only values they
// verified against the validator set.
//
// The tree keeps the blocks and QCs it is given (it neither copies the
// blocks nor their signature slices), so callers must not modify them
// afterwards. A Tree is not safe for concurrent use: its owner serialises
// every call. The zero Tree is not usable; build one with [New].
type Tree struct {
	nodes map[chain.Hash]*node // every block, root included
	root  *node
	// rootLI is the ledger info that commits the root.
	rootLI chain.QuorumCert
	// highest is the block certified by the highest QC; its stored QC is
	// that QC.
	highest *node
	// highestCommit is the QC whose CommitInfo has the highest round among
	// those whose committed block is in the tree.
	highestCommit chain.QuorumCert
}

// New returns a tree holding only root, after checking that root's info, QC
// and ledger info describe root.Block.
func New(root Root) (*Tree, error) {
	if err := checkRoot(root); err != nil {
		return nil, err
	}
	qc := root.QC
	n := &node{block: root.Block, info: root.Info, qc: &qc}
	return &Tree{
		nodes:         map[chain.Hash]*node{root.Block.ID: n},
		root:          n,
		rootLI:        root.LedgerInfo,
		highest:       n,
		highestCommit: root.LedgerInfo,
	}, nil
}

func checkRoot(r Root) error {
	if r.Block == nil {
		return fmt.Errorf("%w: no block", ErrBadRoot)
	}
	if err := describes(r.Info, r.Block); err != nil {
		return fmt.Errorf("%w: %w", ErrBadRoot, err)
	}
	if got := r.QC.CertifiedBlock(); got != r.Info {
		return fmt.Errorf("%w: QC certifies %s round %d, not the root %s round %d as executed",
			ErrBadRoot, got.ID.Short(), got.Round, r.Info.ID.Short(), r.Info.Round)
	}
	return checkCommits(r.LedgerInfo, r.Info)
}

// checkCommits checks that li commits the block executed to info.
func checkCommits(li chain.QuorumCert, info chain.BlockInfo) error {
	got := li.CommitInfo()
	switch {
	case got == info:
		return nil
	case got.ID == info.ID:
		return fmt.Errorf("%w: %w: ledger info commits root %s at version %d state %s, executed to version %d state %s",
			ErrBadRoot, ErrStateMismatch, info.ID.Short(), got.Version, got.ExecutedStateID.Short(),
			info.Version, info.ExecutedStateID.Short())
	default:
		return fmt.Errorf("%w: ledger info commits %s round %d, not the root %s round %d",
			ErrBadRoot, got.ID.Short(), got.Round, info.ID.Short(), info.Round)
	}
}

// describes checks that info is an executed info of b.
func describes(info chain.BlockInfo, b *chain.Block) error {
	if info.ID != b.ID || info.Epoch != b.Epoch() || info.Round != b.Round() ||
		info.TimestampUsecs != b.Data.TimestampUsecs {
		return fmt.Errorf("%w: info %s epoch %d round %d for block %s epoch %d round %d",
			ErrBadBlock, info.ID.Short(), info.Epoch, info.Round, b.ID.Short(), b.Epoch(), b.Round())
	}
	return nil
}

// Root returns the tree's root.
func (t *Tree) Root() Root {
	return Root{Block: t.root.block, Info: t.root.info, QC: *t.root.qc, LedgerInfo: t.rootLI}
}

// Len returns the number of blocks in the tree, root included.
func (t *Tree) Len() int { return len(t.nodes) }

// Exists reports whether block id is the root or in the tree.
func (t *Tree) Exists(id chain.Hash) bool {
	_, ok := t.nodes[id]
	return ok
}

// Block returns block id and its executed info, if it is the root or in the
// tree.
func (t *Tree) Block(id chain.Hash) (*chain.Block, chain.BlockInfo, bool) {
	n, ok := t.nodes[id]
	if !ok {
		return nil, chain.BlockInfo{}, false
	}
	return n.block, n.info, true
}

// QC returns the QC that certifies block id, if the tree holds one: the
// first inserted, or the root's.
func (t *Tree) QC(id chain.Hash) (chain.QuorumCert, bool) {
	n, ok := t.nodes[id]
	if !ok || n.qc == nil {
		return chain.QuorumCert{}, false
	}
	return *n.qc, true
}

// PathFromRoot returns the blocks from the root (excluded) to block id
// (included), oldest first, in O(depth). It returns an empty path for the
// root, and false if id is neither the root nor in the tree.
func (t *Tree) PathFromRoot(id chain.Hash) ([]*chain.Block, bool) {
	n, ok := t.nodes[id]
	if !ok {
		return nil, false
	}
	return t.path(n), true
}

// BlocksToCommit returns the blocks a commit of block id makes final: the
// path from the root (excluded) to id (included), oldest first. It fails
// with ErrNotDescendant if id is the root or not in the tree.
func (t *Tree) BlocksToCommit(id chain.Hash) ([]*chain.Block, error) {
	n, ok := t.nodes[id]
	if !ok || n == t.root {
		return nil, fmt.Errorf("%w: %s (root %s)", ErrNotDescendant, id.Short(), t.root.info.ID.Short())
	}
	return t.path(n), nil
}

// path returns the blocks from the root (excluded) to n (included).
func (t *Tree) path(n *node) []*chain.Block {
	out := make([]*chain.Block, n.depth-t.root.depth)
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = n.block
		n = n.parent
	}
	return out
}

// HighestQC returns the QC of highest certified round inserted so far
// (ties keep the first); initially the root's QC.
func (t *Tree) HighestQC() chain.QuorumCert { return *t.highest.qc }

// HighestCertifiedBlock returns the block certified by [Tree.HighestQC] and
// its executed info.
func (t *Tree) HighestCertifiedBlock() (*chain.Block, chain.BlockInfo) {
	return t.highest.block, t.highest.info
}

// HighestCommitCert returns the QC whose CommitInfo has the highest round
// among those whose committed block is the root or in the tree (ties keep
// the first); initially the root's ledger info.
func (t *Tree) HighestCommitCert() chain.QuorumCert { return t.highestCommit }

// IDs returns the ids of every block in the tree, the root included, in no
// particular order.
func (t *Tree) IDs() []chain.Hash {
	ids := make([]chain.Hash, 0, len(t.nodes))
	for id := range t.nodes {
		ids = append(ids, id)
	}
	return ids
}

// GenesisRoot returns the root of a fresh chain: the genesis block, executed
// to an empty ledger, with the genesis QC as both its QC and its ledger info.
func GenesisRoot(g *chain.Genesis) Root {
	qc := g.QC()
	return Root{Block: g.Block(), Info: g.BlockInfo(), QC: qc, LedgerInfo: qc}
}
