package chain_test

import (
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
)

func TestVerifyQC(t *testing.T) {
	f := newFixture(t)
	v := f.v
	// mut returns the round-3 QC changed by fn and signed again by the same
	// signers, so that only the rule fn breaks fails.
	mut := func(fn func(*chain.QuorumCert)) func() *chain.QuorumCert {
		return func() *chain.QuorumCert {
			qc := f.qc()
			fn(qc)
			v.ResealQC(qc)
			return qc
		}
	}
	// sigMut changes the signatures only.
	sigMut := func(fn func(sigs []chain.Signature) []chain.Signature) func() *chain.QuorumCert {
		return func() *chain.QuorumCert {
			qc := f.qc()
			sl := &qc.SignedLedgerInfo
			sl.Signatures = fn(sl.Signatures)
			return qc
		}
	}
	// signedBy is the round-3 QC signed by the validators at idx.
	signedBy := func(idx ...int) func() *chain.QuorumCert {
		return func() *chain.QuorumCert {
			qc := f.qc()
			li := qc.SignedLedgerInfo.LedgerInfo
			qc.SignedLedgerInfo = v.SignLedgerInfo(li, idx)
			return qc
		}
	}
	li := f.nodes[2].QC.SignedLedgerInfo.LedgerInfo
	genesisQC := v.Genesis.QC()
	otherQC := chaintest.NewValidators(2, 4).Genesis.QC()

	tests := []struct {
		name    string
		qc      func() *chain.QuorumCert
		wantErr error
		soft    bool
	}{
		{"valid, commits round 1", f.qc, nil, false},
		{"valid, commits nothing", func() *chain.QuorumCert { return &f.nodes[0].QC }, nil, false},
		{"valid, commits genesis", func() *chain.QuorumCert { return &f.nodes[1].QC }, nil, false},
		{"genesis QC", func() *chain.QuorumCert { return &genesisQC }, nil, false},
		{"signed by a bare quorum", signedBy(v.Quorum()...), nil, false},

		{"genesis QC of another chain", func() *chain.QuorumCert { return &otherQC }, chain.ErrGenesis, false},
		{"genesis QC with a signature", func() *chain.QuorumCert {
			qc := v.Genesis.QC()
			qc.SignedLedgerInfo = v.SignLedgerInfo(qc.SignedLedgerInfo.LedgerInfo, v.All())
			return &qc
		}, chain.ErrGenesis, false},
		{"round-0 QC with another state", func() *chain.QuorumCert {
			qc := v.Genesis.QC()
			qc.VoteData.Proposed.Version = 1
			return &qc
		}, chain.ErrGenesis, false},

		{"consensus data hash", func() *chain.QuorumCert {
			qc := f.qc()
			qc.VoteData.Proposed.ExecutedStateID[0] ^= 1
			return qc
		}, chain.ErrConsensusDataHash, false},

		{"epoch behind the validator set", mut(func(qc *chain.QuorumCert) { f.setQCEpoch(qc, 0) }), chain.ErrEpoch, false},
		{"epoch ahead of the validator set", mut(func(qc *chain.QuorumCert) { f.setQCEpoch(qc, 2) }), chain.ErrEpoch, true},
		{"parent in another epoch", mut(func(qc *chain.QuorumCert) { qc.VoteData.Parent.Epoch = 0 }), chain.ErrEpoch, false},

		{"proposed round equals parent's", mut(func(qc *chain.QuorumCert) { qc.VoteData.Proposed.Round = qc.VoteData.Parent.Round }), chain.ErrRound, false},
		{"proposed round below parent's", mut(func(qc *chain.QuorumCert) { qc.VoteData.Proposed.Round = qc.VoteData.Parent.Round - 1 }), chain.ErrRound, false},
		{"proposed version below parent's", mut(func(qc *chain.QuorumCert) { qc.VoteData.Proposed.Version = qc.VoteData.Parent.Version - 1 }), chain.ErrMalformed, false},
		{"proposed timestamp below parent's", mut(func(qc *chain.QuorumCert) {
			qc.VoteData.Proposed.TimestampUsecs = qc.VoteData.Parent.TimestampUsecs - 1
		}), chain.ErrMalformed, false},

		{"commit with a round gap before proposed", mut(func(qc *chain.QuorumCert) { qc.VoteData.Proposed.Round++ }), chain.ErrCommitInfo, false},
		{"commit with a round gap before parent", mut(func(qc *chain.QuorumCert) { qc.SignedLedgerInfo.LedgerInfo.CommitInfo.Round-- }), chain.ErrCommitInfo, false},
		{"commit of the parent itself", mut(func(qc *chain.QuorumCert) { qc.SignedLedgerInfo.LedgerInfo.CommitInfo = qc.VoteData.Parent }), chain.ErrCommitInfo, false},
		{"commit in another epoch", mut(func(qc *chain.QuorumCert) { qc.SignedLedgerInfo.LedgerInfo.CommitInfo.Epoch = 2 }), chain.ErrCommitInfo, false},
		{"commit version above parent's", mut(func(qc *chain.QuorumCert) {
			qc.SignedLedgerInfo.LedgerInfo.CommitInfo.Version = qc.VoteData.Parent.Version + 1
		}), chain.ErrCommitInfo, false},
		{"commit timestamp above parent's", mut(func(qc *chain.QuorumCert) {
			qc.SignedLedgerInfo.LedgerInfo.CommitInfo.TimestampUsecs = qc.VoteData.Parent.TimestampUsecs + 1
		}), chain.ErrCommitInfo, false},
		{"commit where rounds forbid one", mut(func(qc *chain.QuorumCert) {
			qc.SignedLedgerInfo.LedgerInfo.CommitInfo = f.nodes[0].Info
			qc.VoteData = f.nodes[1].QC.VoteData // rounds 2 on 1: commits at most genesis
		}), chain.ErrCommitInfo, false},

		{"signer not a validator", sigMut(func(sigs []chain.Signature) []chain.Signature {
			sigs[0] = chain.Signature{Signer: f.outsider.ID(), Sig: f.outsider.Sign(li.Hash())}
			return sortSigs(sigs)
		}), chain.ErrUnknownSigner, false},
		{"duplicate signer", sigMut(func(sigs []chain.Signature) []chain.Signature {
			return append(sigs[:2:2], sigs[1])
		}), chain.ErrDuplicateSigner, false},
		{"unsorted signers", sigMut(func(sigs []chain.Signature) []chain.Signature {
			sigs[0], sigs[1] = sigs[1], sigs[0]
			return sigs
		}), chain.ErrUnsortedSigners, false},
		{"signature bit flipped", sigMut(func(sigs []chain.Signature) []chain.Signature {
			sigs[3].Sig = flipped(sigs[3].Sig)
			return sigs
		}), chain.ErrBadSignature, false},
		{"signature of another ledger info", sigMut(func(sigs []chain.Signature) []chain.Signature {
			other := f.nodes[1].QC.SignedLedgerInfo.Signatures
			sigs[2] = other[2]
			return sigs
		}), chain.ErrBadSignature, false},
		{"signature empty", sigMut(func(sigs []chain.Signature) []chain.Signature {
			sigs[0].Sig = nil
			return sigs
		}), chain.ErrBadSignature, false},
		{"two of four signers", signedBy(0, 1), chain.ErrNoQuorum, false},
		{"no signers", signedBy(), chain.ErrNoQuorum, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkVerifyErr(t, v.Verifier.VerifyQC(tc.qc()), tc.wantErr, tc.soft)
		})
	}
}

// TestVerifyQCVotingPower checks that a quorum is counted in voting power,
// not in signers: ten validators of power 1 and one of power 20 (total 30,
// quorum 21).
func TestVerifyQCVotingPower(t *testing.T) {
	powers := []uint64{20, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}
	v := chaintest.NewValidatorsWithPower(3, powers)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 1})
	n := b.Extend(b.Genesis(), 3)[2]
	high, lows := -1, []int{}
	for i, s := range v.Signers {
		if v.Set.Power(s.ID()) == 20 {
			high = i
		} else {
			lows = append(lows, i)
		}
	}
	if high < 0 || v.Set.TotalPower() != 30 || v.Set.QuorumPower() != 21 {
		t.Fatalf("unexpected set: high %d, total %d, quorum %d", high, v.Set.TotalPower(), v.Set.QuorumPower())
	}
	commit := n.QC.CommitInfo()
	tests := []struct {
		name    string
		signers []int
		wantErr error
	}{
		{"all ten low-power validators", lows, chain.ErrNoQuorum},
		{"the high-power validator alone", []int{high}, chain.ErrNoQuorum},
		{"the high-power validator and one more", []int{high, lows[0]}, nil},
		{"Quorum()", v.Quorum(), nil},
		{"everyone", v.All(), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			qc := v.SignQC(n.QC.VoteData, commit, tc.signers)
			checkVerifyErr(t, v.Verifier.VerifyQC(&qc), tc.wantErr, false)
		})
	}
}

func TestVerifyLedgerInfo(t *testing.T) {
	f := newFixture(t)
	v := f.v
	valid := f.nodes[2].QC.SignedLedgerInfo // commits round 1
	li := valid.LedgerInfo
	ahead := li
	ahead.CommitInfo.Epoch = 2
	tests := []struct {
		name    string
		li      chain.LedgerInfoWithSignatures
		wantErr error
		soft    bool
	}{
		{"valid", valid, nil, false},
		{"signed by a bare quorum", v.SignLedgerInfo(li, v.Quorum()), nil, false},
		{"no quorum", v.SignLedgerInfo(li, []int{3}), chain.ErrNoQuorum, false},
		{"signature over another ledger info", chain.LedgerInfoWithSignatures{
			LedgerInfo: li, Signatures: f.nodes[3].QC.SignedLedgerInfo.Signatures,
		}, chain.ErrBadSignature, false},
		{"signer not a validator", chain.LedgerInfoWithSignatures{
			LedgerInfo: li,
			Signatures: sortSigs(append(v.SignLedgerInfo(li, []int{0, 1, 2}).Signatures,
				chain.Signature{Signer: f.outsider.ID(), Sig: f.outsider.Sign(li.Hash())})),
		}, chain.ErrUnknownSigner, false},
		{"commit of a later epoch", v.SignLedgerInfo(ahead, v.All()), chain.ErrEpoch, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkVerifyErr(t, v.Verifier.VerifyLedgerInfo(&tc.li), tc.wantErr, tc.soft)
		})
	}
}

func TestVerifyTC(t *testing.T) {
	f := newFixture(t)
	v := f.v
	// timeoutSigs signs the timeout of round of epoch by every validator.
	timeoutSigs := func(epoch, round uint64) []chain.Signature {
		var sigs []chain.Signature
		for _, s := range v.Signers {
			sigs = append(sigs, s.SignTimeout(epoch, round))
		}
		return sortSigs(sigs)
	}
	withSigs := func(epoch, round uint64, sigs []chain.Signature) chain.TimeoutCert {
		return chain.TimeoutCert{Epoch: epoch, Round: round, Signatures: sigs}
	}
	badSig := v.SignTC(5, v.All())
	badSig.Signatures[2].Sig = flipped(badSig.Signatures[2].Sig)
	unsorted := v.SignTC(5, v.All())
	unsorted.Signatures[0], unsorted.Signatures[3] = unsorted.Signatures[3], unsorted.Signatures[0]
	// Vote signatures are over a ledger info hash: a TC made of them must
	// not verify, whatever its round.
	voteSigs := f.nodes[2].QC.SignedLedgerInfo.Signatures

	tests := []struct {
		name    string
		tc      chain.TimeoutCert
		wantErr error
		soft    bool
	}{
		{"valid", v.SignTC(5, v.All()), nil, false},
		{"signed by a bare quorum", v.SignTC(5, v.Quorum()), nil, false},
		{"built from Signer.SignTimeout", withSigs(1, 7, timeoutSigs(1, 7)), nil, false},
		{"round 0", v.SignTC(0, v.All()), chain.ErrRound, false},
		{"no quorum", v.SignTC(5, []int{0, 1}), chain.ErrNoQuorum, false},
		{"bad signature", badSig, chain.ErrBadSignature, false},
		{"unsorted signers", unsorted, chain.ErrUnsortedSigners, false},
		{"signatures of another round", withSigs(1, 6, timeoutSigs(1, 5)), chain.ErrBadSignature, false},
		{"vote signatures presented as timeouts", withSigs(1, 3, voteSigs), chain.ErrBadSignature, false},
		{"epoch behind", withSigs(0, 5, timeoutSigs(0, 5)), chain.ErrEpoch, false},
		{"epoch ahead", withSigs(2, 5, timeoutSigs(2, 5)), chain.ErrEpoch, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkVerifyErr(t, v.Verifier.VerifyTC(&tc.tc), tc.wantErr, tc.soft)
		})
	}
}

func TestVerifyTimeout(t *testing.T) {
	f := newFixture(t)
	v := f.v
	s := v.Signers[1]
	vote := s.SignVote(f.voteData())
	tests := []struct {
		name         string
		epoch, round uint64
		sig          chain.Signature
		wantErr      error
		soft         bool
	}{
		{"valid", 1, 5, s.SignTimeout(1, 5), nil, false},
		{"another round", 1, 6, s.SignTimeout(1, 5), chain.ErrBadSignature, false},
		{"another signer", 1, 5, chain.Signature{Signer: v.Signers[2].ID(), Sig: s.SignTimeout(1, 5).Sig}, chain.ErrBadSignature, false},
		{"signer not a validator", 1, 5, f.outsider.SignTimeout(1, 5), chain.ErrUnknownSigner, false},
		{"vote signature", 1, 5, chain.Signature{Signer: s.ID(), Sig: vote.Signature}, chain.ErrBadSignature, false},
		{"epoch ahead", 2, 5, s.SignTimeout(2, 5), chain.ErrEpoch, true},
		{"epoch behind", 0, 5, s.SignTimeout(0, 5), chain.ErrEpoch, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkVerifyErr(t, v.Verifier.VerifyTimeout(tc.epoch, tc.round, tc.sig), tc.wantErr, tc.soft)
		})
	}
}

func TestVerifyVote(t *testing.T) {
	f := newFixture(t)
	v := f.v
	vd, commit := f.voteData()
	s := v.Signers[2]
	// mut returns a fresh vote changed by fn.
	mut := func(fn func(*chain.Vote)) *chain.Vote {
		vote := s.SignVote(vd, commit)
		fn(vote)
		return vote
	}
	gap := vd
	gap.Proposed.Round++ // a round gap forbids the commit
	ahead := vd
	ahead.Proposed.Epoch, ahead.Parent.Epoch = 2, 2
	tests := []struct {
		name    string
		vote    *chain.Vote
		wantErr error
		soft    bool
	}{
		{"valid", s.SignVote(vd, commit), nil, false},
		{"valid, commits nothing", s.SignVote(vd, chain.BlockInfo{}), nil, false},
		{"bad signature", mut(func(x *chain.Vote) { x.Signature = flipped(x.Signature) }), chain.ErrBadSignature, false},
		{"no signature", mut(func(x *chain.Vote) { x.Signature = nil }), chain.ErrBadSignature, false},
		{"another author", mut(func(x *chain.Vote) { x.Author = v.Signers[0].ID() }), chain.ErrBadSignature, false},
		{"author not a validator", f.outsider.SignVote(vd, commit), chain.ErrUnknownSigner, false},
		{"consensus data hash", mut(func(x *chain.Vote) { x.VoteData.Proposed.Version++ }), chain.ErrConsensusDataHash, false},
		{"commit inconsistent with rounds", s.SignVote(gap, commit), chain.ErrCommitInfo, false},
		{"epoch ahead", s.SignVote(ahead, chain.BlockInfo{}), chain.ErrEpoch, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkVerifyErr(t, v.Verifier.VerifyVote(tc.vote), tc.wantErr, tc.soft)
		})
	}
}

// TestSigningDomains checks that a signature made for one kind of object
// never verifies as a signature of another kind, by the same signer.
func TestSigningDomains(t *testing.T) {
	f := newFixture(t)
	v := f.v
	blk := f.block()
	author := v.Signer(blk.Author())
	vd, commit := f.voteData()
	vote := author.SignVote(vd, commit)
	timeout := author.SignTimeout(blk.Epoch(), blk.Round())
	blockSig := blk.Signature

	// Each of the three is valid where it belongs.
	checkVerifyErr(t, v.Verifier.VerifyBlock(blk), nil, false)
	checkVerifyErr(t, v.Verifier.VerifyVote(vote), nil, false)
	checkVerifyErr(t, v.Verifier.VerifyTimeout(blk.Epoch(), blk.Round(), timeout), nil, false)

	asBlock := func(sig []byte) error {
		return v.Verifier.VerifyBlock(chaintest.Corrupt(blk, func(b *chain.Block) { b.Signature = sig }))
	}
	asVote := func(sig []byte) error {
		x := *vote
		x.Signature = sig
		return v.Verifier.VerifyVote(&x)
	}
	asTimeout := func(sig []byte) error {
		return v.Verifier.VerifyTimeout(blk.Epoch(), blk.Round(), chain.Signature{Signer: author.ID(), Sig: sig})
	}
	tests := []struct {
		name  string
		sig   []byte
		check func([]byte) error
	}{
		{"block signature as vote", blockSig, asVote},
		{"block signature as timeout", blockSig, asTimeout},
		{"vote signature as block", vote.Signature, asBlock},
		{"vote signature as timeout", vote.Signature, asTimeout},
		{"timeout signature as block", timeout.Sig, asBlock},
		{"timeout signature as vote", timeout.Sig, asVote},
		// The signer signs the raw hash of another domain's object.
		{"signature over the vote data hash as vote", author.Sign(vd.Hash()), asVote},
		{"signature over the block id as timeout", author.Sign(blk.ID), asTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkVerifyErr(t, tc.check(tc.sig), chain.ErrBadSignature, false)
		})
	}
}
