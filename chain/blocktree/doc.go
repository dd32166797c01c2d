// Package blocktree keeps the in-memory tree of executed blocks and their
// quorum certificates (QCs), rooted at the last committed block: the block
// tree of a LibraBFT node, shared by consensus and the syncer.
//
// A [Tree] owns structure only. Every block and QC handed to it has already
// been verified against the validator set by the caller (signatures, quorum,
// hash links); the tree checks that the pieces fit together: a block's parent
// is in the tree and is certified by the block's QC exactly as this node
// executed it, rounds increase, a QC certifies (and commits) blocks with the
// executed states this node computed. It tracks the highest QC, the block it
// certifies and the highest commit certificate, gives the path a commit makes
// final, and prunes everything that no longer descends from a new root.
//
// The package is pure: no I/O, no clock, no goroutines, no package-level
// state. A Tree is not safe for concurrent use; its owner (the node's event
// loop) serialises access. Every operation is O(1) amortised except the
// path-returning ones, which are O(depth), and pruning, which is
// O(removed).
//
// # Usage
//
// A node starts from its committed root (genesis, or what its store
// recovered), inserts blocks the way the syncer's fetch loop does — oldest
// first, each block's QC, then the block, then the QC that started the
// fetch — and commits when the highest commit certificate moves past the
// root:
//
//	g := vals.Genesis
//	tree, err := blocktree.New(blocktree.Root{
//		Block: g.Block(), Info: g.BlockInfo(), QC: g.QC(), LedgerInfo: g.QC(),
//	})
//	...
//	for _, b := range pending { // retrieved and verified, oldest first
//		if err := tree.InsertQC(*b.QC()); err != nil {
//			return err
//		}
//		info, err := execute(b) // the state computer, speculatively
//		if err != nil {
//			return err
//		}
//		if err := tree.InsertBlock(b, info); err != nil {
//			return err // errors.Is(err, blocktree.ErrStateMismatch): a local fault
//		}
//	}
//	if err := tree.InsertQC(qc); err != nil {
//		return err
//	}
//
//	cc := tree.HighestCommitCert()
//	if id := cc.CommitInfo().ID; id != tree.Root().Block.ID {
//		blocks, err := tree.BlocksToCommit(id) // oldest first
//		if err != nil {
//			return err
//		}
//		// commit blocks to the ledger and persist cc before pruning
//		removed, err := tree.Prune(id, cc)
//		if err != nil {
//			return err
//		}
//		// delete removed from the store
//	}
//
// A fast-forward sync to a commit cert C2 on the 3-chain B0 ← B1 ← B2
// replaces the whole tree with [Tree.Rebuild], rooted at (B0, C0, C2) with
// blocks [B1, B2] and QCs [C2, C1, C0]; Rebuild changes nothing if the
// pieces do not fit.
package blocktree
