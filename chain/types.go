package chain

import (
	"bytes"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
)

// BlockInfo summarises a block after execution: where it sits in the chain
// and the ledger state it leads to. Votes and ledger infos carry BlockInfos,
// never whole blocks.
type BlockInfo struct {
	_ struct{} `cbor:",toarray"`
	// Epoch is the validator-set epoch the block belongs to.
	Epoch uint64
	// Round is the consensus round the block was proposed in.
	Round uint64
	// ID is the block id (see [Block]).
	ID Hash
	// ExecutedStateID is the root of the transaction accumulator after the
	// block's transactions were appended.
	ExecutedStateID Hash
	// StateRoot is the root of the state tree (chain/statetree) after the
	// block's writes: it commits to every key/value pair of the state at
	// Version. The empty state's root is [EmptyStateRoot].
	StateRoot Hash
	// Version is the number of transactions in the ledger after the block:
	// transactions have versions 0 … Version-1.
	Version uint64
	// TimestampUsecs is the block's timestamp in microseconds since the Unix
	// epoch.
	TimestampUsecs uint64
}

// IsEmpty reports whether bi is the zero BlockInfo, which a ledger info uses
// to say "commits nothing".
func (bi BlockInfo) IsEmpty() bool { return bi == BlockInfo{} }

// VoteData is what a vote is about: the proposed block and its parent, both as
// executed by the voter.
type VoteData struct {
	_        struct{} `cbor:",toarray"`
	Proposed BlockInfo
	Parent   BlockInfo
}

// Hash returns the domain-separated hash of vd; a [LedgerInfo] commits to it
// as its ConsensusDataHash.
func (vd *VoteData) Hash() Hash { return HashOf(DomainVoteData, vd) }

// LedgerInfo is the statement validators sign when they vote: "the ledger
// committed up to CommitInfo, and I vote for the block described by the vote
// data whose hash is ConsensusDataHash". An empty CommitInfo commits nothing.
type LedgerInfo struct {
	_                 struct{} `cbor:",toarray"`
	CommitInfo        BlockInfo
	ConsensusDataHash Hash
}

// Hash returns the domain-separated hash of li: the message of every vote
// signature.
func (li *LedgerInfo) Hash() Hash { return HashOf(DomainLedgerInfo, li) }

// Signature is one validator's ed25519 signature.
type Signature struct {
	_      struct{} `cbor:",toarray"`
	Signer peer.ID
	Sig    []byte
}

// LedgerInfoWithSignatures is a ledger info signed by a quorum of
// validators. Signatures are sorted by signer, with no signer twice.
type LedgerInfoWithSignatures struct {
	_          struct{} `cbor:",toarray"`
	LedgerInfo LedgerInfo
	Signatures []Signature
}

// Signers returns the ids of the validators that signed, in order.
func (l *LedgerInfoWithSignatures) Signers() []peer.ID {
	out := make([]peer.ID, len(l.Signatures))
	for i, s := range l.Signatures {
		out[i] = s.Signer
	}
	return out
}

// QuorumCert certifies a block: a quorum of validators voted for VoteData
// and signed the ledger info that commits to it.
type QuorumCert struct {
	_                struct{} `cbor:",toarray"`
	VoteData         VoteData
	SignedLedgerInfo LedgerInfoWithSignatures
}

// CertifiedBlock returns the info of the block the QC certifies.
func (qc *QuorumCert) CertifiedBlock() BlockInfo { return qc.VoteData.Proposed }

// ParentBlock returns the info of the certified block's parent.
func (qc *QuorumCert) ParentBlock() BlockInfo { return qc.VoteData.Parent }

// Round returns the round of the certified block.
func (qc *QuorumCert) Round() uint64 { return qc.VoteData.Proposed.Round }

// Epoch returns the epoch of the certified block.
func (qc *QuorumCert) Epoch() uint64 { return qc.VoteData.Proposed.Epoch }

// LedgerInfo returns the signed ledger info of the QC.
func (qc *QuorumCert) LedgerInfo() *LedgerInfoWithSignatures { return &qc.SignedLedgerInfo }

// CommitInfo returns the block this QC commits; the zero BlockInfo if none.
func (qc *QuorumCert) CommitInfo() BlockInfo { return qc.SignedLedgerInfo.LedgerInfo.CommitInfo }

// CommitsBlock reports whether the QC's ledger info commits a block.
func (qc *QuorumCert) CommitsBlock() bool { return !qc.CommitInfo().IsEmpty() }

// Signers returns the ids of the validators that signed the QC.
func (qc *QuorumCert) Signers() []peer.ID { return qc.SignedLedgerInfo.Signers() }

// Equal reports whether qc and o are the same QC, signatures included.
func (qc *QuorumCert) Equal(o *QuorumCert) bool {
	return qc.VoteData == o.VoteData && qc.SignedLedgerInfo.LedgerInfo == o.SignedLedgerInfo.LedgerInfo &&
		slices.EqualFunc(qc.SignedLedgerInfo.Signatures, o.SignedLedgerInfo.Signatures, func(x, y Signature) bool {
			return x.Signer == y.Signer && bytes.Equal(x.Sig, y.Sig)
		})
}

// Hash returns the domain-separated hash of the QC's ledger info, which
// identifies the QC's statement (not its particular set of signatures).
func (qc *QuorumCert) Hash() Hash { return qc.SignedLedgerInfo.LedgerInfo.Hash() }

// Timeout is a validator's statement that round Round of epoch Epoch timed
// out for it.
type Timeout struct {
	_     struct{} `cbor:",toarray"`
	Epoch uint64
	Round uint64
}

// Hash returns the domain-separated hash of t: the message of a timeout
// signature.
func (t *Timeout) Hash() Hash { return HashOf(DomainTimeout, t) }

// TimeoutCert proves that a quorum of validators timed out in a round.
// Signatures are sorted by signer, with no signer twice.
type TimeoutCert struct {
	_          struct{} `cbor:",toarray"`
	Epoch      uint64
	Round      uint64
	Signatures []Signature
}

// Timeout returns the statement the TC's signatures are over.
func (tc *TimeoutCert) Timeout() Timeout { return Timeout{Epoch: tc.Epoch, Round: tc.Round} }

// Vote is one validator's vote: its signature over a ledger info whose
// consensus data hash is the hash of VoteData.
type Vote struct {
	_          struct{} `cbor:",toarray"`
	VoteData   VoteData
	LedgerInfo LedgerInfo
	Author     peer.ID
	Signature  []byte
}
