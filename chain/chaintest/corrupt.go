package chaintest

import (
	"github.com/p2pnode/p2pnode/chain"
)

// CloneBlock returns a deep copy of b, for tests that corrupt one field.
func CloneBlock(b *chain.Block) *chain.Block {
	var c chain.Block
	mustRoundTrip(b, &c)
	return &c
}

// CloneQC returns a deep copy of qc.
func CloneQC(qc *chain.QuorumCert) *chain.QuorumCert {
	var c chain.QuorumCert
	mustRoundTrip(qc, &c)
	return &c
}

func mustRoundTrip(in, out any) {
	enc, err := chain.Encode(in)
	if err != nil {
		panic(err)
	}
	if err := chain.Decode(enc, len(enc), out); err != nil {
		panic(err)
	}
}

// Corrupt returns a copy of b changed by f. The copy keeps b's id and
// signature, so it fails the id check unless f only touched those.
func Corrupt(b *chain.Block, f func(*chain.Block)) *chain.Block {
	c := CloneBlock(b)
	f(c)
	return c
}

// Reseal recomputes b's id from its data and signs it again with its
// author's key, so that only the rule a test targets fails. It panics if the
// author is not one of v's validators.
func (v *Validators) Reseal(b *chain.Block) *chain.Block {
	b.ID = b.Data.Hash()
	s := v.Signer(b.Data.Author)
	if s == nil {
		panic("chaintest: reseal: author is not a validator")
	}
	b.Signature = s.Sign(b.ID)
	return b
}

// ResealQC re-signs qc's ledger info after its vote data changed: the
// consensus data hash is recomputed and the same signers sign again.
func (v *Validators) ResealQC(qc *chain.QuorumCert) {
	li := qc.SignedLedgerInfo.LedgerInfo
	li.ConsensusDataHash = qc.VoteData.Hash()
	var signers []int
	for _, sig := range qc.SignedLedgerInfo.Signatures {
		for i, s := range v.Signers {
			if s.ID() == sig.Signer {
				signers = append(signers, i)
			}
		}
	}
	qc.SignedLedgerInfo = v.SignLedgerInfo(li, signers)
}
