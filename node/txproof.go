package node

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/ledger"
)

// MaxLedgerInfoSize bounds the encoded ledger info of a TxProofJSON: a
// quorum of chain.MaxValidators signatures fits with room to spare.
const MaxLedgerInfoSize = 1 << 20

// MaxTxProofJSONSize bounds the body of a GET /tx/{hash} answer a client
// reads: the transaction and ledger info in hex, and the proof.
const MaxTxProofJSONSize = 2*(chain.MaxTxSize+MaxLedgerInfoSize) + 8<<10

// TxProofJSON is a committed transaction with its proof, as GET
// /tx/{hash} answers it (docs/protocol.md section 11). Byte strings are
// lowercase hex. LedgerVersion and ExecutedStateID repeat what LedgerInfo
// signs, for reading: a client checks the signed ones.
type TxProofJSON struct {
	TxHash          string   `json:"tx_hash"`
	Version         uint64   `json:"version"`
	Tx              string   `json:"tx"`
	LedgerVersion   uint64   `json:"ledger_version"`
	ExecutedStateID string   `json:"executed_state_id"`
	Proof           []string `json:"proof"`
	// LedgerInfo is the canonical CBOR encoding of the
	// LedgerInfoWithSignatures (docs/protocol.md section 3).
	LedgerInfo string `json:"ledger_info"`
}

// NewTxProofJSON returns the JSON form of p, the proof of the transaction
// with hash h.
func NewTxProofJSON(h chain.Hash, p *ledger.TxProof) (*TxProofJSON, error) {
	li, err := chain.Encode(p.LedgerInfo)
	if err != nil {
		return nil, err
	}
	info := p.LedgerInfo.LedgerInfo.CommitInfo
	j := &TxProofJSON{
		TxHash:          h.String(),
		Version:         p.Version,
		Tx:              hex.EncodeToString(p.Tx),
		LedgerVersion:   info.Version,
		ExecutedStateID: info.ExecutedStateID.String(),
		Proof:           make([]string, len(p.Proof)),
		LedgerInfo:      hex.EncodeToString(li),
	}
	for i, x := range p.Proof {
		j.Proof[i] = x.String()
	}
	return j, nil
}

// ErrBadTxProofJSON: a TxProofJSON is malformed or over its limits.
var ErrBadTxProofJSON = errors.New("node: malformed transaction proof")

// Decode returns the transaction hash and the proof j holds, checked for
// form and size (not verified: see ledger.VerifyTxProof).
func (j *TxProofJSON) Decode() (chain.Hash, *ledger.TxProof, error) {
	bad := func(format string, args ...any) (chain.Hash, *ledger.TxProof, error) {
		return chain.Hash{}, nil, fmt.Errorf("%w: %s", ErrBadTxProofJSON, fmt.Sprintf(format, args...))
	}
	h, err := chain.ParseHash(j.TxHash)
	if err != nil {
		return bad("tx_hash: %v", err)
	}
	if len(j.Tx) > 2*chain.MaxTxSize || len(j.LedgerInfo) > 2*MaxLedgerInfoSize || len(j.Proof) > ledger.MaxTxProofHashes {
		return bad("over the limits: %d hex digits of transaction, %d of ledger info, %d proof hashes",
			len(j.Tx), len(j.LedgerInfo), len(j.Proof))
	}
	p := &ledger.TxProof{Version: j.Version, Proof: make([]chain.Hash, len(j.Proof))}
	if p.Tx, err = hex.DecodeString(j.Tx); err != nil || len(p.Tx) == 0 {
		return bad("tx: want 1 to %d bytes in hex", chain.MaxTxSize)
	}
	for i, s := range j.Proof {
		if p.Proof[i], err = chain.ParseHash(s); err != nil {
			return bad("proof hash %d: %v", i, err)
		}
	}
	raw, err := hex.DecodeString(j.LedgerInfo)
	if err != nil {
		return bad("ledger_info: %v", err)
	}
	var li chain.LedgerInfoWithSignatures
	if err := chain.Decode(raw, MaxLedgerInfoSize, &li); err != nil {
		return bad("ledger_info: %v", err)
	}
	p.LedgerInfo = &li
	return h, p, nil
}

// txProof answers GET /tx/{hash}: the committed transaction whose tx_hash
// is hash, with its proof; 400 for a malformed hash, 404 for a
// transaction not committed (yet) by the node's latest ledger info.
func (h *apiHandler) txProof(w http.ResponseWriter, r *http.Request) {
	hash, err := chain.ParseHash(r.PathValue("hash"))
	if err != nil {
		httpError(w, http.StatusBadRequest, "the hash must be 64 hex digits")
		return
	}
	p, ok, err := h.n.opened.Blocks.Ledger().TxProof(hash)
	if err != nil {
		h.log.Error("transaction proof", "tx_hash", hash, "err", err)
		httpError(w, http.StatusInternalServerError, "cannot read the transaction")
		return
	}
	if !ok {
		httpError(w, http.StatusNotFound, "no committed transaction has this hash")
		return
	}
	j, err := NewTxProofJSON(hash, p)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, j)
}
