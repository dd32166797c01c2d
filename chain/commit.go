package chain

// CommitInfo applies the 3-chain commit rule for a vote on the block
// described by proposed, whose parent is certified by qc.
//
// If proposed (B2), the block qc certifies (B1) and that block's parent (B0)
// have consecutive rounds — B0.round+1 = B1.round and B1.round+1 = B2.round —
// then a quorum certificate on B2 commits B0, and CommitInfo returns B0's
// info and true. Otherwise it returns the zero BlockInfo and false, and the
// vote's ledger info commits nothing.
func CommitInfo(proposed BlockInfo, qc *QuorumCert) (BlockInfo, bool) {
	b1, b0 := qc.CertifiedBlock(), qc.ParentBlock()
	if b1.Round+1 == proposed.Round && b0.Round+1 == b1.Round {
		return b0, true
	}
	return BlockInfo{}, false
}

// VoteDataFor returns the vote data for a vote on block b, executed to info.
func VoteDataFor(b *Block, info BlockInfo) VoteData {
	return VoteData{Proposed: info, Parent: b.QC().CertifiedBlock()}
}
