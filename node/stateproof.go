package node

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/chain/statetree"
)

// MaxStateProofJSONSize bounds the body of a GET /state answer a client
// reads: the key, value and ledger info in hex, and the proof.
const MaxStateProofJSONSize = 2*(chain.MaxKeySize+chain.MaxTxSize+MaxLedgerInfoSize+maxStateProofSize) + 8<<10

// maxStateProofSize is the largest encoded statetree.Proof: a leaf and a
// sibling per depth.
const maxStateProofSize = 1 + 2*chain.HashSize + 3 + statetree.MaxDepth*chain.HashSize

// StateProofJSON is a key's value in the committed state, or its absence,
// with its proof, as GET /state?key= answers it (docs/protocol.md section
// 12). Byte strings are lowercase hex. LedgerVersion and StateRoot repeat
// what LedgerInfo signs, for reading: a client checks the signed ones.
type StateProofJSON struct {
	Key           string `json:"key"`
	Present       bool   `json:"present"`
	Value         string `json:"value"`
	LedgerVersion uint64 `json:"ledger_version"`
	StateRoot     string `json:"state_root"`
	// Proof is statetree.Proof.MarshalBinary.
	Proof string `json:"proof"`
	// LedgerInfo is the canonical CBOR encoding of the
	// LedgerInfoWithSignatures (docs/protocol.md section 3).
	LedgerInfo string `json:"ledger_info"`
}

// NewStateProofJSON returns the JSON form of p.
func NewStateProofJSON(p *ledger.StateProof) (*StateProofJSON, error) {
	li, err := chain.Encode(p.LedgerInfo)
	if err != nil {
		return nil, err
	}
	proof, err := p.Proof.MarshalBinary()
	if err != nil {
		return nil, err
	}
	info := p.LedgerInfo.LedgerInfo.CommitInfo
	return &StateProofJSON{
		Key:           hex.EncodeToString(p.Key),
		Present:       p.Present,
		Value:         hex.EncodeToString(p.Value),
		LedgerVersion: info.Version,
		StateRoot:     info.StateRoot.String(),
		Proof:         hex.EncodeToString(proof),
		LedgerInfo:    hex.EncodeToString(li),
	}, nil
}

// ErrBadStateProofJSON: a StateProofJSON is malformed or over its limits.
var ErrBadStateProofJSON = errors.New("node: malformed state proof")

// Decode returns the proof j holds, checked for form and size (not
// verified: see ledger.VerifyStateProof).
func (j *StateProofJSON) Decode() (*ledger.StateProof, error) {
	bad := func(format string, args ...any) (*ledger.StateProof, error) {
		return nil, fmt.Errorf("%w: %s", ErrBadStateProofJSON, fmt.Sprintf(format, args...))
	}
	if len(j.Key) > 2*chain.MaxKeySize || len(j.Value) > 2*chain.MaxTxSize || len(j.Proof) > 2*maxStateProofSize || len(j.LedgerInfo) > 2*MaxLedgerInfoSize {
		return bad("over the limits: %d hex digits of key, %d of value, %d of proof, %d of ledger info",
			len(j.Key), len(j.Value), len(j.Proof), len(j.LedgerInfo))
	}
	p := &ledger.StateProof{Present: j.Present, Proof: &statetree.Proof{}}
	var err error
	if p.Key, err = hex.DecodeString(j.Key); err != nil || len(p.Key) == 0 {
		return bad("key: want 1 to %d bytes in hex", chain.MaxKeySize)
	}
	if p.Value, err = hex.DecodeString(j.Value); err != nil {
		return bad("value: %v", err)
	}
	if !p.Present && len(p.Value) > 0 {
		return bad("a value for an absent key")
	}
	raw, err := hex.DecodeString(j.Proof)
	if err != nil {
		return bad("proof: %v", err)
	}
	if err := p.Proof.UnmarshalBinary(raw); err != nil {
		return bad("proof: %v", err)
	}
	if raw, err = hex.DecodeString(j.LedgerInfo); err != nil {
		return bad("ledger_info: %v", err)
	}
	var li chain.LedgerInfoWithSignatures
	if err := chain.Decode(raw, MaxLedgerInfoSize, &li); err != nil {
		return bad("ledger_info: %v", err)
	}
	p.LedgerInfo = &li
	return p, nil
}

// stateProof answers GET /state?key=HEX: the key's value in the committed
// state, or its absence, with the proof; 400 for a malformed key, 503
// while the node has no settled committed state (at genesis, in a state
// sync, or while its state tree follows a sync).
func (h *apiHandler) stateProof(w http.ResponseWriter, r *http.Request) {
	key, err := hex.DecodeString(r.URL.Query().Get("key"))
	if err != nil || len(key) == 0 || len(key) > chain.MaxKeySize {
		httpError(w, http.StatusBadRequest, fmt.Sprintf("key must be 1 to %d bytes in hex", chain.MaxKeySize))
		return
	}
	p, err := h.n.opened.Blocks.Ledger().StateProof(key)
	switch {
	case errors.Is(err, ledger.ErrStateBehind):
		httpError(w, http.StatusServiceUnavailable, "the node's state is not settled yet: retry later")
		return
	case err != nil:
		h.log.Error("state proof", "err", err)
		httpError(w, http.StatusInternalServerError, "cannot read the state")
		return
	}
	j, err := NewStateProofJSON(p)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, j)
}
