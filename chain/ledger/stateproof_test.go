package ledger_test

import (
	"context"
	"errors"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/chain/statetree"
)

// TestStateProof proves keys present and absent against a committed
// ledger info, and rejects tampered answers with typed errors; a state not
// settled yet has no proof.
func TestStateProof(t *testing.T) {
	vals := chaintest.NewValidators(84, 4)
	b := chaintest.NewBuilder(vals, chaintest.BuilderConfig{TxsPerBlock: 8})
	nodes := b.Extend(b.Genesis(), 6)
	l, _ := newLedger(t, vals.Genesis)
	if _, err := l.StateProof([]byte("k")); !errors.Is(err, ledger.ErrStateBehind) {
		t.Fatalf("StateProof at genesis = %v, want ErrStateBehind", err)
	}
	if err := l.ExecuteCertifiedChain(chaintest.Blocks(nodes)); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(chaintest.Blocks(nodes[:4]), nodes[5].QC.LedgerInfo()); err != nil {
		t.Fatal(err)
	}
	key, _, _ := chain.DecodeKV(nodes[2].Block.Payload()[3])
	if _, err := l.StateProof(key); !errors.Is(err, ledger.ErrStateBehind) {
		t.Fatalf("StateProof before Settle = %v, want ErrStateBehind", err)
	}
	if err := l.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	v := vals.Verifier
	p, err := l.StateProof(key)
	if err != nil || !p.Present {
		t.Fatalf("StateProof(present) = %+v, %v", p, err)
	}
	if err := ledger.VerifyStateProof(v, key, p); err != nil {
		t.Fatalf("VerifyStateProof(present) = %v", err)
	}
	absent := []byte("never written")
	q, err := l.StateProof(absent)
	if err != nil || q.Present {
		t.Fatalf("StateProof(absent) = %+v, %v", q, err)
	}
	if err := ledger.VerifyStateProof(v, absent, q); err != nil {
		t.Fatalf("VerifyStateProof(absent) = %v", err)
	}

	reason := func(err error) error {
		var ve *chain.VerifyError
		if !errors.As(err, &ve) {
			return err
		}
		return ve.Reason
	}
	tests := []struct {
		name   string
		key    []byte
		mutate func(*ledger.StateProof)
		want   error
	}{
		{"other value", key, func(p *ledger.StateProof) { p.Value = append([]byte{}, "forged"...) }, statetree.ErrValueMismatch},
		{"claimed absent", key, func(p *ledger.StateProof) { p.Present = false }, statetree.ErrKeyPresent},
		{"claimed present", absent, func(p *ledger.StateProof) { p.Present, p.Value = true, []byte("x") }, statetree.ErrKeyMissing},
		{"tampered sibling", key, func(p *ledger.StateProof) { p.Proof.Siblings[0][0] ^= 1 }, statetree.ErrWrongRoot},
		{"no signatures", key, func(p *ledger.StateProof) {
			li := *p.LedgerInfo
			li.Signatures = nil
			p.LedgerInfo = &li
		}, ledger.ErrStateLedgerInfo},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := l.StateProof(tt.key)
			if err != nil {
				t.Fatal(err)
			}
			p.Proof = &statetree.Proof{Leaf: p.Proof.Leaf, Siblings: append([]chain.Hash(nil), p.Proof.Siblings...)}
			tt.mutate(p)
			if err := ledger.VerifyStateProof(v, tt.key, p); !errors.Is(reason(err), tt.want) {
				t.Fatalf("VerifyStateProof = %v, want %v", err, tt.want)
			}
		})
	}
}
