package ledger_test

import (
	"errors"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/chain/ledger"
)

// TestTxProof: every committed transaction is found by its leaf hash with
// a proof that verifies, by VerifyTxProof and by the RFC 6962 verifier
// alone against the signed executed state id.
func TestTxProof(t *testing.T) {
	s := newSized(t, 81, []int{1, 2, 3, 5, 8, 13, 1, 7}, 20)
	v := chaintest.NewValidators(81, 4).Verifier // newSized's
	li := s.ledger.LedgerInfo()
	for i, tx := range s.txs {
		h := chain.TxLeafHash(tx)
		p, ok, err := s.ledger.TxProof(h)
		if err != nil || !ok {
			t.Fatalf("tx %d: TxProof = %v, %v", i, ok, err)
		}
		if p.Version != uint64(i) || string(p.Tx) != string(tx) || p.LedgerInfo.LedgerInfo != li.LedgerInfo {
			t.Fatalf("tx %d: proof of version %d for ledger info of version %d", i, p.Version, p.LedgerInfo.LedgerInfo.CommitInfo.Version)
		}
		if err := ledger.VerifyTxProof(v, h, p); err != nil {
			t.Fatalf("tx %d: %v", i, err)
		}
		path := make([][]byte, len(p.Proof))
		for j := range p.Proof {
			path[j] = p.Proof[j][:]
		}
		info := li.LedgerInfo.CommitInfo
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, p.Version, info.Version, h[:], path, info.ExecutedStateID[:]); err != nil {
			t.Fatalf("tx %d: RFC 6962 verifier: %v", i, err)
		}
	}
	if _, ok, err := s.ledger.TxProof(chain.TxLeafHash([]byte("never sent"))); ok || err != nil {
		t.Fatalf("unknown hash: %v, %v", ok, err)
	}
}

func TestTxProofAtGenesis(t *testing.T) {
	l, _ := newLedger(t, chaintest.NewValidators(82, 4).Genesis)
	if _, ok, err := l.TxProof(chain.TxLeafHash([]byte("x"))); ok || err != nil {
		t.Fatalf("TxProof at genesis = %v, %v", ok, err)
	}
}

// TestVerifyTxProofRejects: each kind of tampering fails with its reason.
func TestVerifyTxProofRejects(t *testing.T) {
	s := newSized(t, 83, []int{3, 4, 5, 6}, 20)
	v := chaintest.NewValidators(83, 4).Verifier // newSized's
	h := chain.TxLeafHash(s.txs[5])
	good, ok, err := s.ledger.TxProof(h)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	other := chaintest.NewValidators(84, 4).Verifier
	clone := func() *ledger.TxProof {
		p := *good
		p.Proof = append([]chain.Hash(nil), good.Proof...)
		li := *good.LedgerInfo
		p.LedgerInfo = &li
		return &p
	}
	for _, tt := range []struct {
		name   string
		v      *chain.Verifier
		h      chain.Hash
		tamper func(*ledger.TxProof) *ledger.TxProof
		want   error
	}{
		{"other transaction", v, h, func(p *ledger.TxProof) *ledger.TxProof { p.Tx = s.txs[6]; return p }, ledger.ErrTxMismatch},
		{"other hash", v, chain.TxLeafHash(s.txs[6]), func(p *ledger.TxProof) *ledger.TxProof { return p }, ledger.ErrTxMismatch},
		{"flipped proof hash", v, h, func(p *ledger.TxProof) *ledger.TxProof { p.Proof[1][0] ^= 1; return p }, ledger.ErrTxProof},
		{"short proof", v, h, func(p *ledger.TxProof) *ledger.TxProof { p.Proof = p.Proof[1:]; return p }, ledger.ErrTxProof},
		{"long proof", v, h, func(p *ledger.TxProof) *ledger.TxProof { p.Proof = append(p.Proof, chain.Hash{}); return p }, ledger.ErrTxProof},
		{"huge proof", v, h, func(p *ledger.TxProof) *ledger.TxProof { p.Proof = make([]chain.Hash, 65); return p }, ledger.ErrTxProof},
		{"other version", v, h, func(p *ledger.TxProof) *ledger.TxProof { p.Version++; return p }, ledger.ErrTxProof},
		{"version past the ledger", v, h, func(p *ledger.TxProof) *ledger.TxProof { p.Version = 1 << 40; return p }, ledger.ErrTxProof},
		{"no signatures", v, h, func(p *ledger.TxProof) *ledger.TxProof { p.LedgerInfo.Signatures = nil; return p }, ledger.ErrTxLedgerInfo},
		{"ledger info changed", v, h, func(p *ledger.TxProof) *ledger.TxProof {
			p.LedgerInfo.LedgerInfo.CommitInfo.ExecutedStateID[0] ^= 1
			return p
		}, ledger.ErrTxLedgerInfo},
		{"other validators", other, h, func(p *ledger.TxProof) *ledger.TxProof { return p }, ledger.ErrTxLedgerInfo},
		{"no ledger info", v, h, func(p *ledger.TxProof) *ledger.TxProof { p.LedgerInfo = nil; return p }, ledger.ErrTxLedgerInfo},
		{"nil proof", v, h, func(*ledger.TxProof) *ledger.TxProof { return nil }, ledger.ErrTxLedgerInfo},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := ledger.VerifyTxProof(tt.v, tt.h, tt.tamper(clone()))
			var ve *chain.VerifyError
			if !errors.As(err, &ve) || !errors.Is(err, tt.want) {
				t.Fatalf("VerifyTxProof = %v, want a *chain.VerifyError for %v", err, tt.want)
			}
		})
	}
	if err := ledger.VerifyTxProof(v, h, good); err != nil {
		t.Fatalf("the untampered proof: %v", err)
	}
}
