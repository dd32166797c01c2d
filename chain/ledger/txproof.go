package ledger

import (
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/p2pnode/p2pnode/chain"
)

// Errors of [VerifyTxProof], the reasons of its [*chain.VerifyError].
var (
	// ErrTxMismatch: the proof's transaction does not have the hash asked
	// for.
	ErrTxMismatch = errors.New("ledger: transaction does not have the hash asked for")
	// ErrTxProof: the inclusion proof does not lead from the transaction's
	// leaf to the signed ledger info's accumulator root, or is malformed.
	ErrTxProof = errors.New("ledger: transaction proof does not verify")
	// ErrTxLedgerInfo: the ledger info is missing or not signed by a quorum
	// of the validators.
	ErrTxLedgerInfo = errors.New("ledger: transaction proof's ledger info is not signed by a quorum")
)

// MaxTxProofHashes bounds the hashes of an inclusion proof: one per level
// of a tree of at most 2^64 leaves.
const MaxTxProofHashes = 64

// TxProof is a committed transaction with what proves it to a client that
// knows only the validator set: a ledger info signed by a quorum, and the
// RFC 6962 inclusion proof (audit path, section 2.1.1) of the transaction's
// leaf at index Version in the accumulator of the ledger info's version,
// whose root is the ledger info's executed state id.
type TxProof struct {
	Version    uint64
	Tx         []byte
	LedgerInfo *chain.LedgerInfoWithSignatures
	// Proof is the audit path, from the leaf's sibling up.
	Proof []chain.Hash
}

// TxProof returns the committed transaction whose accumulator leaf hash is
// h (docs/protocol.md: tx_hash), with its inclusion proof in the ledger of
// the latest signed ledger info, and whether there is one. A transaction
// stored during a state sync but past the ledger info's version is not
// committed yet: not found.
func (l *Ledger) TxProof(h chain.Hash) (*TxProof, bool, error) {
	li := l.LedgerInfo()
	if li == nil {
		return nil, false, nil // genesis: no transaction
	}
	size := li.LedgerInfo.CommitInfo.Version
	version, ok, err := l.st.TxVersion(h)
	if err != nil || !ok || version >= size {
		return nil, false, err
	}
	txs, err := l.st.Txs(version, 1)
	if err != nil {
		return nil, false, err
	}
	nodes, err := proof.Inclusion(version, size)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	hashes, err := l.st.Nodes(nodes.IDs)
	if err != nil {
		return nil, false, err
	}
	raw := make([][]byte, len(hashes))
	for i := range hashes {
		raw[i] = hashes[i][:]
	}
	path, err := nodes.Rehash(raw, rfc6962.DefaultHasher.HashChildren)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	p := &TxProof{Version: version, Tx: txs[0], LedgerInfo: li, Proof: make([]chain.Hash, len(path))}
	for i, x := range path {
		p.Proof[i] = chain.Hash(x)
	}
	return p, true, nil
}

// VerifyTxProof checks p as a client does (docs/protocol.md section 11):
// the ledger info's signatures against v's validator set, the
// transaction's leaf hash against h, and the inclusion proof against the
// ledger info's executed state id. A failure is a [*chain.VerifyError]
// whose Reason is ErrTxLedgerInfo, ErrTxMismatch or ErrTxProof.
func VerifyTxProof(v *chain.Verifier, h chain.Hash, p *TxProof) error {
	fail := func(reason error, format string, args ...any) error {
		return &chain.VerifyError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
	}
	if p == nil || p.LedgerInfo == nil {
		return fail(ErrTxLedgerInfo, "no ledger info")
	}
	if err := v.VerifyLedgerInfo(p.LedgerInfo); err != nil {
		return fail(ErrTxLedgerInfo, "%v", err)
	}
	leaf := chain.TxLeafHash(p.Tx)
	if leaf != h {
		return fail(ErrTxMismatch, "leaf hash %s, asked for %s", leaf.Short(), h.Short())
	}
	if len(p.Proof) > MaxTxProofHashes {
		return fail(ErrTxProof, "%d hashes, at most %d", len(p.Proof), MaxTxProofHashes)
	}
	info := p.LedgerInfo.LedgerInfo.CommitInfo
	path := make([][]byte, len(p.Proof))
	for i := range p.Proof {
		path[i] = p.Proof[i][:]
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, p.Version, info.Version, leaf[:], path, info.ExecutedStateID[:]); err != nil {
		return fail(ErrTxProof, "version %d in the ledger of version %d: %v", p.Version, info.Version, err)
	}
	return nil
}
