package blocktree

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/p2pnode/p2pnode/chain"
)

// Prune makes block newRoot the root, committed by rootLedgerInfo, and
// removes every block (and its QC) that does not descend from newRoot, the
// old root included. It returns the removed ids, parents before children,
// so the caller can delete them from its store. Pruning to the current root
// removes nothing and only replaces the root's ledger info.
//
// It runs in O(removed), plus O(remaining) in the rare case where the block
// of the highest QC, or the committed block of the highest commit cert, is
// removed and the highest must be found again among the remaining blocks.
//
// It fails, changing nothing, with ErrNotDescendant if newRoot is not in the
// tree, and with ErrBadRoot if newRoot has no QC in the tree or
// rootLedgerInfo does not commit it as executed here.
func (t *Tree) Prune(newRoot chain.Hash, rootLedgerInfo chain.QuorumCert) ([]chain.Hash, error) {
	nr, ok := t.nodes[newRoot]
	if !ok {
		return nil, fmt.Errorf("%w: new root %s (root %s)", ErrNotDescendant, newRoot.Short(), t.root.info.ID.Short())
	}
	if nr.qc == nil {
		return nil, fmt.Errorf("%w: new root %s round %d has no QC", ErrBadRoot, newRoot.Short(), nr.info.Round)
	}
	if err := checkCommits(rootLedgerInfo, nr.info); err != nil {
		return nil, err
	}
	var removed []chain.Hash
	if nr != t.root {
		// The path's nodes, oldest first, are the old root and the ancestors
		// of nr; each goes with every subtree beside the path.
		path := make([]*node, nr.depth-t.root.depth)
		for i, n := len(path)-1, nr.parent; i >= 0; i, n = i-1, n.parent {
			path[i] = n
		}
		for i, p := range path {
			keep := nr
			if i+1 < len(path) {
				keep = path[i+1]
			}
			delete(t.nodes, p.block.ID)
			removed = append(removed, p.block.ID)
			for _, c := range p.children {
				if c != keep {
					removed = t.removeSubtree(c, removed)
				}
			}
		}
		nr.parent = nil // let the removed nodes be collected
		t.root = nr
	}
	t.rootLI = rootLedgerInfo
	t.refreshHighest(rootLedgerInfo)
	return removed, nil
}

// removeSubtree deletes n and its descendants, appending their ids to
// removed, parents before children.
func (t *Tree) removeSubtree(n *node, removed []chain.Hash) []chain.Hash {
	stack := []*node{n}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		delete(t.nodes, n.block.ID)
		removed = append(removed, n.block.ID)
		for i := len(n.children) - 1; i >= 0; i-- {
			stack = append(stack, n.children[i])
		}
	}
	return removed
}

// refreshHighest restores the highest QC and commit cert after a prune that
// committed the root by rootLI. A rescan breaks ties (which take an
// equivocating quorum) in map order.
func (t *Tree) refreshHighest(rootLI chain.QuorumCert) {
	if _, ok := t.nodes[t.highest.info.ID]; !ok {
		t.highest = t.root
		for _, n := range t.nodes {
			if n.qc != nil && n.info.Round > t.highest.info.Round {
				t.highest = n
			}
		}
	}
	hc := t.highestCommit.CommitInfo()
	if _, ok := t.nodes[hc.ID]; ok {
		return // the root or a descendant: at least as high as rootLI
	}
	t.highestCommit = rootLI
	if hc.Round <= t.root.info.Round {
		// Every remaining block has a round above hc's, so no remaining QC
		// commits more than rootLI does.
		return
	}
	for _, n := range t.nodes {
		if n.qc == nil || !n.qc.CommitsBlock() {
			continue
		}
		ci := n.qc.CommitInfo()
		if _, ok := t.nodes[ci.ID]; ok && ci.Round > t.highestCommit.CommitInfo().Round {
			t.highestCommit = *n.qc
		}
	}
}

// Rebuild replaces the whole tree by one built from root, then blocks (in
// any order: they are inserted by increasing round) and then qcs, as a node
// does after a fast-forward sync. If any of them is inconsistent, Rebuild
// returns the error and leaves the tree unchanged.
func (t *Tree) Rebuild(root Root, blocks []ExecutedBlock, qcs []chain.QuorumCert) error {
	nt, err := New(root)
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	for i, eb := range blocks {
		if eb.Block == nil {
			return fmt.Errorf("rebuild: block %d: %w: nil block", i, ErrBadBlock)
		}
	}
	sorted := slices.Clone(blocks)
	slices.SortStableFunc(sorted, func(a, b ExecutedBlock) int { return cmp.Compare(a.Block.Round(), b.Block.Round()) })
	for _, eb := range sorted {
		if err := nt.InsertBlock(eb.Block, eb.Info); err != nil {
			return fmt.Errorf("rebuild: %w", err)
		}
	}
	for _, qc := range qcs {
		if err := nt.InsertQC(qc); err != nil {
			return fmt.Errorf("rebuild: %w", err)
		}
	}
	*t = *nt
	return nil
}
