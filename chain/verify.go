package chain

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Reasons of verification failures. A [*VerifyError] wraps exactly one of
// them, so callers test with errors.Is.
var (
	ErrBlockID           = errors.New("chain: block id does not match its data")
	ErrBlockKind         = errors.New("chain: unknown block kind")
	ErrMalformed         = errors.New("chain: malformed value")
	ErrGenesis           = errors.New("chain: not this chain's genesis")
	ErrUnknownSigner     = errors.New("chain: signer is not a validator")
	ErrDuplicateSigner   = errors.New("chain: duplicate signer")
	ErrUnsortedSigners   = errors.New("chain: signatures not sorted by signer")
	ErrBadSignature      = errors.New("chain: bad signature")
	ErrNoQuorum          = errors.New("chain: signers lack a quorum of voting power")
	ErrConsensusDataHash = errors.New("chain: consensus data hash does not match vote data")
	ErrParentLink        = errors.New("chain: block is not the parent of its child")
	ErrRound             = errors.New("chain: rounds not strictly increasing")
	ErrEpoch             = errors.New("chain: wrong epoch")
	ErrTimestamp         = errors.New("chain: timestamp not after parent's")
	ErrPayload           = errors.New("chain: payload over limits")
	ErrCommitInfo        = errors.New("chain: commit info inconsistent with vote data")
)

// VerifyError is a failed verification. Reason is one of the Err sentinels
// of this package; Soft marks a failure that may be the verifier's fault
// rather than the sender's (for example a value from an epoch this node does
// not know yet): the value should be ignored, not held against its sender.
type VerifyError struct {
	Reason error
	Soft   bool
	Detail string
}

func (e *VerifyError) Error() string {
	if e.Detail == "" {
		return e.Reason.Error()
	}
	return e.Reason.Error() + ": " + e.Detail
}

// Unwrap returns the reason, for errors.Is.
func (e *VerifyError) Unwrap() error { return e.Reason }

func fail(reason error, format string, args ...any) *VerifyError {
	return &VerifyError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// IsSoft reports whether err is a soft verification failure.
func IsSoft(err error) bool {
	var ve *VerifyError
	return errors.As(err, &ve) && ve.Soft
}

// Verifier checks values against one chain's genesis and validator set. It
// is safe for concurrent use. Its only state is a bounded memory of the
// quorum certificates that verified, so that each is verified once (see
// [Verifier.VerifyQC]).
type Verifier struct {
	vs          *ValidatorSet
	genesisID   Hash
	genesisQC   QuorumCert
	genesisQCLI Hash
	known       *verifiedQCs
}

// NewVerifier returns a verifier for the chain g defines.
func NewVerifier(g *Genesis) (*Verifier, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	qc := g.QC()
	return &Verifier{
		vs:          g.Validators,
		genesisID:   g.Block().ID,
		genesisQC:   qc,
		genesisQCLI: qc.SignedLedgerInfo.LedgerInfo.Hash(),
		known:       newVerifiedQCs(),
	}, nil
}

// Validators returns the validator set.
func (v *Verifier) Validators() *ValidatorSet { return v.vs }

// GenesisID returns the id of the genesis block.
func (v *Verifier) GenesisID() Hash { return v.genesisID }

// CheckID checks that b's id is the hash of its data.
func (b *Block) CheckID() error {
	if got := b.Data.Hash(); got != b.ID {
		return fail(ErrBlockID, "id %s, data hashes to %s", b.ID.Short(), got.Short())
	}
	return nil
}

// CheckWellFormed checks the rules of a block that need no validator set:
// its id, its kind, the fields its kind requires, its payload limits, and
// that its round, epoch and timestamp follow those of the parent its QC
// certifies.
func (b *Block) CheckWellFormed() error {
	d := &b.Data
	switch d.Kind {
	case KindGenesis:
		if d.Round != 0 || d.Author != "" || len(b.Signature) != 0 || len(d.Payload) != 1 ||
			len(d.Payload[0]) != HashSize || !isZeroQC(&d.QuorumCert) {
			return fail(ErrMalformed, "genesis block %s has non-genesis fields", b.ID.Short())
		}
	case KindProposal:
		if d.Author == "" || len(b.Signature) == 0 {
			return fail(ErrMalformed, "proposal %s has no author or signature", b.ID.Short())
		}
		if err := checkPayload(d.Payload); err != nil {
			return err
		}
		parent := d.QuorumCert.CertifiedBlock()
		if d.Round <= parent.Round {
			return fail(ErrRound, "block round %d, parent round %d", d.Round, parent.Round)
		}
		if d.Epoch != parent.Epoch {
			return fail(ErrEpoch, "block epoch %d, parent epoch %d", d.Epoch, parent.Epoch)
		}
		if d.TimestampUsecs <= parent.TimestampUsecs {
			return fail(ErrTimestamp, "block %d, parent %d", d.TimestampUsecs, parent.TimestampUsecs)
		}
	default:
		return fail(ErrBlockKind, "%s", d.Kind)
	}
	return b.CheckID()
}

func isZeroQC(qc *QuorumCert) bool {
	return qc.VoteData == VoteData{} && qc.SignedLedgerInfo.LedgerInfo == LedgerInfo{} &&
		len(qc.SignedLedgerInfo.Signatures) == 0
}

func checkPayload(p [][]byte) error {
	if len(p) > MaxBlockTxs {
		return fail(ErrPayload, "%d transactions, limit %d", len(p), MaxBlockTxs)
	}
	total := 0
	for i, tx := range p {
		if len(tx) == 0 || len(tx) > MaxTxSize {
			return fail(ErrPayload, "transaction %d has %d bytes, want 1 to %d", i, len(tx), MaxTxSize)
		}
		total += len(tx)
	}
	if total > MaxBlockPayload {
		return fail(ErrPayload, "%d payload bytes, limit %d", total, MaxBlockPayload)
	}
	return nil
}

// VerifyBlock checks b completely: well-formed (see [Block.CheckWellFormed]),
// of this chain's epoch, signed by a validator, and carrying a valid QC. A
// genesis block verifies only if it is this chain's genesis.
//
// Its QC is remembered, or found, as [Verifier.VerifyQC] does.
func (v *Verifier) VerifyBlock(b *Block) error {
	qc := &b.Data.QuorumCert
	var d Hash
	known := false
	if !b.IsGenesis() && qc.Round() > 0 {
		d = qcDigest(qc)
		known = v.known.has(d)
	}
	err := v.batched(1+len(qc.SignedLedgerInfo.Signatures), func(batch *sigBatch) error {
		return v.checkBlock(b, batch, qcFor(known))
	})
	if err == nil && !known && d != (Hash{}) {
		v.known.add(d)
	}
	return err
}

// VerifyBlocks checks blocks as [Verifier.VerifyBlock] checks each of them,
// with all their signatures (the authors' and their QCs') verified in one
// batch, which costs much less than one check per signature. It returns
// -1 and nil when every block verifies; otherwise the index of the first
// block that fails and the error VerifyBlock returns for it.
func (v *Verifier) VerifyBlocks(blocks []*Block) (int, error) {
	batch := newSigBatch(len(blocks) * (1 + len(v.vs.vals)))
	bad, err := -1, error(nil)
	for i, b := range blocks {
		if err = v.checkBlock(b, batch, qcFull); err != nil {
			bad = i
			break
		}
	}
	if batch.verify() {
		return bad, err
	}
	// Some queued signature is bad: check the blocks before the first
	// failure one signature at a time to find it.
	for i, b := range blocks {
		if err := v.checkBlock(b, nil, qcFull); err != nil || i == bad {
			return i, err
		}
	}
	return -1, nil // unreachable: batch and single checks accept the same signatures
}

// VerifyChain checks blocks that must form a chain: in ascending rounds,
// each the parent of the next ([VerifyParent]). Every block is checked as
// [Verifier.VerifyBlock] checks it, its author's signature included, except
// that the signatures of the QCs embedded in all blocks but the last are
// not checked (their other rules are). The last block's QC is checked in
// full, with the authors' signatures, in one batch.
//
// That is as safe as checking every QC: the last block's QC certifies the
// block before it, whose id commits to its data, embedded QC and parent id
// included, and so on down the chain, so every QC but the last is
// authenticated by a quorum's signatures over a descendant; and a quorum,
// which holds an honest validator, certifies only a block whose ancestors
// and their certificates that validator verified. It saves all but one
// QC's signature checks per chain: a committed range of 64 blocks signed by
// 4 validators costs 68 signature checks instead of 320.
//
// It returns -1 and nil when the chain verifies; otherwise the index of the
// first block that fails and its error.
func (v *Verifier) VerifyChain(blocks []*Block) (int, error) {
	check := func(batch *sigBatch) (int, error) {
		for i, b := range blocks {
			if i > 0 {
				if err := VerifyParent(b, blocks[i-1]); err != nil {
					return i, err
				}
			}
			qc := qcLinked
			if i == len(blocks)-1 {
				qc = qcFull
			}
			if err := v.checkBlock(b, batch, qc); err != nil {
				return i, err
			}
		}
		return -1, nil
	}
	batch := newSigBatch(len(blocks) + len(v.vs.vals))
	bad, err := check(batch)
	if !batch.verify() {
		// Some queued signature is bad: check one at a time to find it.
		bad, err = check(nil)
	}
	if err == nil && len(blocks) > 0 {
		if last := blocks[len(blocks)-1]; !last.IsGenesis() && last.QC().Round() > 0 {
			v.known.add(qcDigest(last.QC()))
		}
	}
	return bad, err
}

// batched runs check, which queues its signature checks in a batch, and
// verifies the batch. If the batch fails, check runs again with every
// signature checked as it comes, so that the error is exactly the one the
// first failing check gives.
func (v *Verifier) batched(capacity int, check func(*sigBatch) error) error {
	batch := newSigBatch(capacity)
	err := check(batch)
	if batch.verify() {
		return err
	}
	return check(nil)
}

// checkSig checks sig over h by validator i now if batch is nil, else
// queues it in batch; failure builds the error.
func (v *Verifier) checkSig(batch *sigBatch, i int, h Hash, sig []byte, failure func() *VerifyError) error {
	if batch != nil {
		if !batch.discard {
			batch.add(v.vs.keys[i], h, sig)
		}
		return nil
	}
	if !verifySig(v.vs.keys[i], h, sig) {
		return failure()
	}
	return nil
}

// qcFor returns qcKnown if known, else qcFull.
func qcFor(known bool) qcCheck {
	if known {
		return qcKnown
	}
	return qcFull
}

// qcCheck is how much of a block's embedded QC checkBlock checks.
type qcCheck int

const (
	qcFull   qcCheck = iota // everything, signatures included
	qcKnown                 // nothing: the QC verified before
	qcLinked                // everything but the signatures: the QC's bytes are authenticated by a descendant's certificate
)

// checkBlock is VerifyBlock with its signature checks done through
// checkSig; qc says how much of the embedded QC to check.
func (v *Verifier) checkBlock(b *Block, batch *sigBatch, qc qcCheck) error {
	if err := b.CheckWellFormed(); err != nil {
		return err
	}
	if b.IsGenesis() {
		if b.ID != v.genesisID {
			return fail(ErrGenesis, "genesis %s, want %s", b.ID.Short(), v.genesisID.Short())
		}
		return nil
	}
	if err := v.checkEpoch(b.Data.Epoch); err != nil {
		return err
	}
	i, ok := v.vs.index[b.Data.Author]
	if !ok {
		return fail(ErrUnknownSigner, "block author %s", b.Data.Author)
	}
	if err := v.checkSig(batch, i, b.ID, b.Signature, func() *VerifyError {
		return fail(ErrBadSignature, "block %s by %s", b.ID.Short(), b.Data.Author)
	}); err != nil {
		return err
	}
	switch qc {
	case qcKnown:
		return nil
	case qcLinked:
		return v.checkQC(&b.Data.QuorumCert, &sigBatch{discard: true})
	}
	return v.checkQC(&b.Data.QuorumCert, batch)
}

// VerifyParent checks that parent is the block child's QC certifies.
func VerifyParent(child, parent *Block) error {
	qc := child.QC()
	if child.ParentID() != parent.ID || qc.Round() != parent.Round() || qc.Epoch() != parent.Epoch() {
		return fail(ErrParentLink, "block %s (parent %s round %d), candidate %s round %d",
			child.ID.Short(), child.ParentID().Short(), qc.Round(), parent.ID.Short(), parent.Round())
	}
	return nil
}

func (v *Verifier) checkEpoch(epoch uint64) error {
	if epoch == v.vs.epoch {
		return nil
	}
	e := fail(ErrEpoch, "epoch %d, validator set epoch %d", epoch, v.vs.epoch)
	// A later epoch may be valid for a node that has not caught up yet.
	e.Soft = epoch > v.vs.epoch
	return e
}

// VerifyQC checks a quorum certificate: its vote data and ledger info agree,
// its rounds and commit info are consistent, and more than two thirds of the
// voting power signed it. The genesis QC verifies only if it is exactly this
// chain's. A QC identical to one that verified recently (by VerifyQC or
// [Verifier.VerifyBlock]) is accepted without checking its signatures
// again.
func (v *Verifier) VerifyQC(qc *QuorumCert) error {
	if qc.Round() == 0 {
		return v.checkQC(qc, nil)
	}
	d := qcDigest(qc)
	if v.known.has(d) {
		return nil
	}
	err := v.batched(len(qc.SignedLedgerInfo.Signatures), func(batch *sigBatch) error {
		return v.checkQC(qc, batch)
	})
	if err == nil {
		v.known.add(d)
	}
	return err
}

// checkQC is VerifyQC with its signature checks done through checkSig.
func (v *Verifier) checkQC(qc *QuorumCert, batch *sigBatch) error {
	if qc.Round() == 0 {
		if qc.VoteData != v.genesisQC.VoteData || qc.SignedLedgerInfo.LedgerInfo.Hash() != v.genesisQCLI ||
			len(qc.SignedLedgerInfo.Signatures) != 0 {
			return fail(ErrGenesis, "round-0 QC is not this chain's genesis QC")
		}
		return nil
	}
	if err := v.checkVoteData(&qc.VoteData, &qc.SignedLedgerInfo.LedgerInfo); err != nil {
		return err
	}
	return v.checkQuorum(qc.SignedLedgerInfo.LedgerInfo.Hash(), qc.SignedLedgerInfo.Signatures, batch)
}

// checkVoteData checks what a QC and a vote share: the consensus data hash,
// epochs, rounds and the commit info.
func (v *Verifier) checkVoteData(vd *VoteData, li *LedgerInfo) error {
	if li.ConsensusDataHash != vd.Hash() {
		return fail(ErrConsensusDataHash, "ledger info names %s", li.ConsensusDataHash.Short())
	}
	if err := v.checkEpoch(vd.Proposed.Epoch); err != nil {
		return err
	}
	if vd.Parent.Epoch != vd.Proposed.Epoch {
		return fail(ErrEpoch, "proposed epoch %d, parent epoch %d", vd.Proposed.Epoch, vd.Parent.Epoch)
	}
	if vd.Proposed.Round <= vd.Parent.Round {
		return fail(ErrRound, "proposed round %d, parent round %d", vd.Proposed.Round, vd.Parent.Round)
	}
	if vd.Proposed.Version < vd.Parent.Version || vd.Proposed.TimestampUsecs < vd.Parent.TimestampUsecs {
		return fail(ErrMalformed, "proposed block's version or timestamp below its parent's")
	}
	c := li.CommitInfo
	if c.IsEmpty() {
		return nil
	}
	if c.Epoch != vd.Proposed.Epoch || c.Round+1 != vd.Parent.Round || vd.Parent.Round+1 != vd.Proposed.Round ||
		c.Version > vd.Parent.Version || c.TimestampUsecs > vd.Parent.TimestampUsecs {
		return fail(ErrCommitInfo, "commit round %d, parent round %d, proposed round %d",
			c.Round, vd.Parent.Round, vd.Proposed.Round)
	}
	return nil
}

// VerifyLedgerInfo checks that more than two thirds of the voting power
// signed li, a ledger info that commits a block (its commit info's epoch
// must be the validator set's).
func (v *Verifier) VerifyLedgerInfo(li *LedgerInfoWithSignatures) error {
	if err := v.checkEpoch(li.LedgerInfo.CommitInfo.Epoch); err != nil {
		return err
	}
	return v.verifyQuorum(li.LedgerInfo.Hash(), li.Signatures)
}

// VerifyTC checks a timeout certificate: more than two thirds of the voting
// power signed the timeout of its round.
func (v *Verifier) VerifyTC(tc *TimeoutCert) error {
	if err := v.checkEpoch(tc.Epoch); err != nil {
		return err
	}
	if tc.Round == 0 {
		return fail(ErrRound, "timeout certificate for round 0")
	}
	t := tc.Timeout()
	return v.verifyQuorum(t.Hash(), tc.Signatures)
}

// VerifyTimeout checks one validator's timeout signature for round of epoch.
func (v *Verifier) VerifyTimeout(epoch, round uint64, s Signature) error {
	if err := v.checkEpoch(epoch); err != nil {
		return err
	}
	t := Timeout{Epoch: epoch, Round: round}
	return v.verifyOne(t.Hash(), s.Signer, s.Sig)
}

// VerifyVote checks a vote: its ledger info commits to its vote data, its
// rounds and commit info are consistent, and its author signed it.
func (v *Verifier) VerifyVote(vote *Vote) error {
	if err := v.checkVoteData(&vote.VoteData, &vote.LedgerInfo); err != nil {
		return err
	}
	return v.verifyOne(vote.LedgerInfo.Hash(), vote.Author, vote.Signature)
}

func (v *Verifier) verifyOne(h Hash, signer peer.ID, sig []byte) error {
	i, ok := v.vs.index[signer]
	if !ok {
		return fail(ErrUnknownSigner, "%s", signer)
	}
	if !verifySig(v.vs.keys[i], h, sig) {
		return fail(ErrBadSignature, "signer %s", signer)
	}
	return nil
}

// verifyQuorum checks that sigs are sorted, from distinct validators, worth
// a quorum of voting power, and valid signatures over h, verified in one
// batch.
func (v *Verifier) verifyQuorum(h Hash, sigs []Signature) error {
	return v.batched(len(sigs), func(batch *sigBatch) error {
		return v.checkQuorum(h, sigs, batch)
	})
}

// checkQuorum is verifyQuorum with its signature checks done through
// checkSig. The cheap checks come first so that a response without a quorum
// costs no signature check.
func (v *Verifier) checkQuorum(h Hash, sigs []Signature, batch *sigBatch) error {
	var power uint64
	idx := make([]int, len(sigs))
	for k, s := range sigs {
		i, ok := v.vs.index[s.Signer]
		if !ok {
			return fail(ErrUnknownSigner, "%s", s.Signer)
		}
		if k > 0 {
			switch c := bytes.Compare([]byte(sigs[k-1].Signer), []byte(s.Signer)); {
			case c == 0:
				return fail(ErrDuplicateSigner, "%s", s.Signer)
			case c > 0:
				return fail(ErrUnsortedSigners, "%s after %s", s.Signer, sigs[k-1].Signer)
			}
		}
		idx[k] = i
		power += v.vs.vals[i].Power
	}
	if !v.vs.HasQuorum(power) {
		return fail(ErrNoQuorum, "power %d of %d", power, v.vs.total)
	}
	for k, s := range sigs {
		if err := v.checkSig(batch, idx[k], h, s.Sig, func() *VerifyError {
			return fail(ErrBadSignature, "signer %s", s.Signer)
		}); err != nil {
			return err
		}
	}
	return nil
}
