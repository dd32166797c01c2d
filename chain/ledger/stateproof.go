package ledger

import (
	"errors"
	"fmt"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/statetree"
)

// ErrStateBehind: there is no committed state to prove yet: the ledger is
// at genesis, in the middle of a state sync, or its state tree still
// follows a sync (see [Ledger.Settle]).
var ErrStateBehind = errors.New("ledger: no settled committed state to prove")

// ErrStateLedgerInfo: a state proof's ledger info is missing or not signed
// by a quorum of the validators (the reason of a [*chain.VerifyError]).
var ErrStateLedgerInfo = errors.New("ledger: state proof's ledger info is not signed by a quorum")

// StateProof is the value of a key in the committed state, or its
// absence, with what proves it to a client that knows only the validator
// set: a ledger info signed by a quorum, and the state tree's proof of the
// key's hash against the state_root of its commit info.
type StateProof struct {
	Key []byte
	// Present tells whether the key is set; Value is its value then.
	Present    bool
	Value      []byte
	LedgerInfo *chain.LedgerInfoWithSignatures
	Proof      *statetree.Proof
}

// StateProof returns the value of key at the committed version, or its
// absence, with its proof in the state of the latest signed ledger info;
// ErrStateBehind if that state is not settled (no ledger info yet, or the
// tree follows a sync).
func (l *Ledger) StateProof(key []byte) (*StateProof, error) {
	if len(key) == 0 || len(key) > chain.MaxKeySize {
		return nil, fmt.Errorf("ledger: state proof: key of %d bytes, want 1 to %d", len(key), chain.MaxKeySize)
	}
	l.mu.Lock()
	li, tree, committed := l.li, l.treeVersion, l.committed.Version
	l.mu.Unlock()
	if li == nil || tree != committed {
		return nil, fmt.Errorf("%w: state tree at version %d, committed version %d", ErrStateBehind, tree, committed)
	}
	p := &StateProof{Key: key, LedgerInfo: li, Proof: &statetree.Proof{}}
	if tree == 0 {
		return p, nil // the empty state: the empty proof
	}
	leaf, proof, err := statetree.New(l.st).Get(tree, statetree.KeyHash(key))
	if err != nil {
		return nil, fmt.Errorf("ledger: state proof at version %d: %w", tree, err)
	}
	p.Proof = proof
	if leaf != nil {
		p.Present, p.Value = true, leaf.Value
	}
	return p, nil
}

// VerifyStateProof checks p as a client does (docs/protocol.md section
// 12): the ledger info's signatures against v's validator set, then the
// proof of SHA-256(key) against its commit info's state_root, of inclusion
// with p.Value or of absence. A failure is a [*chain.VerifyError] whose
// Reason is ErrStateLedgerInfo or one of statetree's proof errors
// (ErrWrongRoot, ErrValueMismatch, ErrKeyMissing, ErrKeyPresent,
// ErrMalformedProof).
func VerifyStateProof(v *chain.Verifier, key []byte, p *StateProof) error {
	if p == nil || p.LedgerInfo == nil {
		return &chain.VerifyError{Reason: ErrStateLedgerInfo, Detail: "no ledger info"}
	}
	if err := v.VerifyLedgerInfo(p.LedgerInfo); err != nil {
		return &chain.VerifyError{Reason: ErrStateLedgerInfo, Detail: err.Error()}
	}
	root, kh := p.LedgerInfo.LedgerInfo.CommitInfo.StateRoot, statetree.KeyHash(key)
	if p.Present {
		return statetree.VerifyInclusion(root, kh, p.Value, p.Proof)
	}
	return statetree.VerifyNonInclusion(root, kh, p.Proof)
}
