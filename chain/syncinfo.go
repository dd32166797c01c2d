package chain

import "slices"

// SyncInfo is what a node tells others about how far it has got: the
// highest commit cert it has (a QC whose ledger info commits a block), its
// highest QC, and its highest timeout certificate if any. A node that
// receives a SyncInfo ahead of its own state syncs to it.
type SyncInfo struct {
	_ struct{} `cbor:",toarray"`
	// HighestCommitCert is a QC whose ledger info commits a block (the
	// seed's "highest ledger info"); the genesis QC at the start.
	HighestCommitCert QuorumCert
	// HighestQC is the QC of the highest certified block.
	HighestQC QuorumCert
	// HighestTC is the highest timeout certificate, if any.
	HighestTC *TimeoutCert
}

// CommitRound returns the round of the block HighestCommitCert commits.
func (si *SyncInfo) CommitRound() uint64 { return si.HighestCommitCert.CommitInfo().Round }

// HighestRound returns the highest round si proves: that of its highest QC
// or of its highest TC, whichever is higher.
func (si *SyncInfo) HighestRound() uint64 {
	r := si.HighestQC.Round()
	if si.HighestTC != nil && si.HighestTC.Round > r {
		r = si.HighestTC.Round
	}
	return r
}

// VerifySyncInfo checks si: both QCs and the TC verify, the commit cert
// commits a block, and the highest QC is not below the commit cert. A QC of
// si equal to one of known (signatures included), which the caller has
// verified already, is not verified again.
func (v *Verifier) VerifySyncInfo(si *SyncInfo, known ...*QuorumCert) error {
	if !si.HighestCommitCert.CommitsBlock() {
		return fail(ErrCommitInfo, "highest commit cert commits no block")
	}
	if si.HighestQC.Round() < si.HighestCommitCert.Round() {
		return fail(ErrRound, "highest QC round %d below commit cert round %d",
			si.HighestQC.Round(), si.HighestCommitCert.Round())
	}
	for _, qc := range []*QuorumCert{&si.HighestCommitCert, &si.HighestQC} {
		if slices.ContainsFunc(known, func(k *QuorumCert) bool { return k != nil && k.Equal(qc) }) {
			continue
		}
		if err := v.VerifyQC(qc); err != nil {
			return err
		}
	}
	if si.HighestTC != nil {
		return v.VerifyTC(si.HighestTC)
	}
	return nil
}
