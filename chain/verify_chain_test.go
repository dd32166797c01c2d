package chain_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
)

// TestVerifyChain checks VerifyChain, which checks the signatures of the
// last block's QC only, against faults at the start, the middle and the
// end of a chain: every fault is caught, at the faulty block or, for a
// resealed block whose QC signature alone is bad, at its child, whose
// parent link no longer holds.
func TestVerifyChain(t *testing.T) {
	v := chaintest.NewValidators(1, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 2, TxSize: 16, Seed: 1})
	nodes := b.Extend(b.Genesis(), 12)
	last := len(nodes) - 1
	qcSig := func(bl *chain.Block) *chain.Block {
		return v.Reseal(chaintest.Corrupt(bl, func(bl *chain.Block) {
			s := bl.Data.QuorumCert.SignedLedgerInfo.Signatures
			s[len(s)-1].Sig = flipped(s[len(s)-1].Sig)
		}))
	}
	faults := []struct {
		name string
		f    func(*chain.Block) *chain.Block
		// wantErr at the faulty block; wantChild, if set, at its child
		// instead when the faulty block is not the last.
		wantErr, wantChild error
	}{
		{"block signature", func(bl *chain.Block) *chain.Block {
			return chaintest.Corrupt(bl, func(bl *chain.Block) { bl.Signature = flipped(bl.Signature) })
		}, chain.ErrBadSignature, nil},
		{"QC signature", qcSig, chain.ErrBadSignature, chain.ErrParentLink},
		{"id", func(bl *chain.Block) *chain.Block {
			return chaintest.Corrupt(bl, func(bl *chain.Block) { bl.Data.TimestampUsecs++ })
		}, chain.ErrBlockID, nil},
		{"no quorum", func(bl *chain.Block) *chain.Block {
			return v.Reseal(chaintest.Corrupt(bl, func(bl *chain.Block) {
				li := &bl.Data.QuorumCert.SignedLedgerInfo
				li.Signatures = li.Signatures[:1]
			}))
		}, chain.ErrNoQuorum, nil},
		{"foreign author", func(bl *chain.Block) *chain.Block {
			other := chaintest.NewValidators(2, 4)
			return chaintest.Corrupt(bl, func(bl *chain.Block) {
				s := other.Leader(bl.Round())
				bl.Data.Author = s.ID()
				bl.ID = bl.Data.Hash()
				bl.Signature = s.Sign(bl.ID)
			})
		}, chain.ErrUnknownSigner, nil},
	}
	t.Run("valid", func(t *testing.T) {
		if i, err := v.Verifier.VerifyChain(chaintest.Blocks(nodes)); i != -1 || err != nil {
			t.Fatalf("VerifyChain = %d, %v; want -1, nil", i, err)
		}
	})
	for _, f := range faults {
		for _, at := range []int{1, 6, last} {
			t.Run(fmt.Sprintf("%s@%d", f.name, at), func(t *testing.T) {
				blocks := chaintest.Blocks(nodes)
				blocks[at] = f.f(blocks[at])
				wantAt, wantErr := at, f.wantErr
				if at < last && f.wantChild != nil {
					if i, err := v.Verifier.VerifyChain(blocks[:at+1]); i != -1 || err != nil {
						// Alone at the end of a chain the fault is caught where it is.
						if i != at || !errors.Is(err, f.wantErr) {
							t.Fatalf("chain ending at the fault: %d, %v; want %d, %v", i, err, at, f.wantErr)
						}
					}
					wantAt, wantErr = at+1, f.wantChild
				}
				i, err := v.Verifier.VerifyChain(blocks)
				if i != wantAt || !errors.Is(err, wantErr) {
					t.Fatalf("VerifyChain = %d, %v; want %d, %v", i, err, wantAt, wantErr)
				}
			})
		}
	}
	t.Run("gap", func(t *testing.T) {
		blocks := chaintest.Blocks(nodes)
		blocks = append(blocks[:4:4], blocks[5:]...)
		if i, err := v.Verifier.VerifyChain(blocks); i != 4 || !errors.Is(err, chain.ErrParentLink) {
			t.Fatalf("VerifyChain = %d, %v; want 4, %v", i, err, chain.ErrParentLink)
		}
	})
	t.Run("one block", func(t *testing.T) {
		bad := qcSig(nodes[5].Block)
		if i, err := v.Verifier.VerifyChain([]*chain.Block{bad}); i != 0 || !errors.Is(err, chain.ErrBadSignature) {
			t.Fatalf("VerifyChain = %d, %v; want 0, %v", i, err, chain.ErrBadSignature)
		}
	})
}
