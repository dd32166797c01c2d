package blocktree

import (
	"fmt"

	"github.com/p2pnode/p2pnode/chain"
)

// InsertBlock adds block b, executed locally to info, under its parent in
// O(1) amortised time. It does not insert b's QC (which certifies the
// parent): insert that with [Tree.InsertQC].
//
// It fails with
//   - ErrBadBlock if b is nil or info does not describe b;
//   - ErrConflict if b is already in the tree with another info (inserting
//     an identical block again does nothing);
//   - ErrBelowRoot if b, or the parent b links to, is at or below the
//     root's round and is not the root;
//   - ErrMissingParent if the parent is not in the tree;
//   - ErrParentMismatch if b's QC does not certify the parent exactly as it
//     was executed here (also ErrStateMismatch when only the executed state
//     differs), or b's round is not above the parent's.
func (t *Tree) InsertBlock(b *chain.Block, info chain.BlockInfo) error {
	if b == nil {
		return fmt.Errorf("%w: nil block", ErrBadBlock)
	}
	if err := describes(info, b); err != nil {
		return err
	}
	if n, ok := t.nodes[b.ID]; ok {
		if n.info != info {
			return fmt.Errorf("%w: block %s round %d: version %d state %s, tree has version %d state %s",
				ErrConflict, b.ID.Short(), b.Round(), info.Version, info.ExecutedStateID.Short(),
				n.info.Version, n.info.ExecutedStateID.Short())
		}
		return nil
	}
	rootRound := t.root.info.Round
	if b.Round() <= rootRound {
		return fmt.Errorf("%w: block %s round %d, root round %d", ErrBelowRoot, b.ID.Short(), b.Round(), rootRound)
	}
	want := b.QC().CertifiedBlock()
	parent, ok := t.nodes[want.ID]
	if !ok {
		if want.Round <= rootRound {
			return fmt.Errorf("%w: parent %s round %d of block %s is not the root (round %d)",
				ErrBelowRoot, want.ID.Short(), want.Round, b.ID.Short(), rootRound)
		}
		return fmt.Errorf("%w: parent %s round %d of block %s round %d",
			ErrMissingParent, want.ID.Short(), want.Round, b.ID.Short(), b.Round())
	}
	if want != parent.info {
		if sameBlock(want, parent.info) {
			return fmt.Errorf("%w: %w: block %s certifies parent %s at version %d state %s, executed to version %d state %s",
				ErrParentMismatch, ErrStateMismatch, b.ID.Short(), want.ID.Short(), want.Version,
				want.ExecutedStateID.Short(), parent.info.Version, parent.info.ExecutedStateID.Short())
		}
		return fmt.Errorf("%w: block %s certifies parent %s as epoch %d round %d, tree has epoch %d round %d",
			ErrParentMismatch, b.ID.Short(), want.ID.Short(), want.Epoch, want.Round,
			parent.info.Epoch, parent.info.Round)
	}
	if b.Round() <= parent.info.Round {
		return fmt.Errorf("%w: block %s round %d not above parent %s round %d",
			ErrParentMismatch, b.ID.Short(), b.Round(), parent.info.ID.Short(), parent.info.Round)
	}
	n := &node{block: b, info: info, parent: parent, depth: parent.depth + 1}
	parent.children = append(parent.children, n)
	t.nodes[b.ID] = n
	return nil
}

// sameBlock reports whether a and b describe the same block and differ at
// most in its execution result.
func sameBlock(a, b chain.BlockInfo) bool {
	return a.ID == b.ID && a.Epoch == b.Epoch && a.Round == b.Round && a.TimestampUsecs == b.TimestampUsecs
}

// InsertQC records qc for the block it certifies, in O(1). The tree keeps
// one QC per block: the first inserted; a later QC for the same block is
// accepted and not stored, though it is still considered for the highest QC
// and commit cert, which InsertQC updates.
//
// It fails, changing nothing, with
//   - ErrBelowRoot if the certified block is at or below the root's round
//     and is not the root;
//   - ErrMissingBlock if the certified block is not in the tree;
//   - ErrStateMismatch if qc certifies the block, or commits a block of the
//     tree, with another executed info than the tree's.
func (t *Tree) InsertQC(qc chain.QuorumCert) error {
	cert := qc.CertifiedBlock()
	n, ok := t.nodes[cert.ID]
	if !ok {
		if rootRound := t.root.info.Round; cert.Round <= rootRound {
			return fmt.Errorf("%w: QC certifies %s round %d, root round %d", ErrBelowRoot, cert.ID.Short(), cert.Round, rootRound)
		}
		return fmt.Errorf("%w: QC certifies %s round %d", ErrMissingBlock, cert.ID.Short(), cert.Round)
	}
	if cert != n.info {
		return mismatch("certifies", cert, n.info)
	}
	commits := false
	if qc.CommitsBlock() {
		ci := qc.CommitInfo()
		if c, ok := t.nodes[ci.ID]; ok {
			if ci != c.info {
				return mismatch("commits", ci, c.info)
			}
			commits = true
		}
	}
	if n.qc == nil {
		n.qc = new(chain.QuorumCert)
		*n.qc = qc
	}
	if cert.Round > t.highest.info.Round {
		t.highest = n
	}
	if commits && qc.CommitInfo().Round > t.highestCommit.CommitInfo().Round {
		t.highestCommit = qc
	}
	return nil
}

func mismatch(verb string, quorum, local chain.BlockInfo) error {
	return fmt.Errorf("%w: QC %s %s round %d at version %d state %s (epoch %d, ts %d), executed here to version %d state %s (epoch %d, ts %d)",
		ErrStateMismatch, verb, quorum.ID.Short(), quorum.Round, quorum.Version, quorum.ExecutedStateID.Short(),
		quorum.Epoch, quorum.TimestampUsecs, local.Version, local.ExecutedStateID.Short(), local.Epoch, local.TimestampUsecs)
}
