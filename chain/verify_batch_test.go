package chain_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
)

// TestVerifyBlocksPinpoints checks that VerifyBlocks, which verifies all
// signatures of its blocks in one batch, accepts what VerifyBlock accepts
// and names the first block VerifyBlock rejects, with the same reason,
// whatever the faults and their positions.
func TestVerifyBlocksPinpoints(t *testing.T) {
	v := chaintest.NewValidators(1, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 2, TxSize: 16, Seed: 1})
	nodes := b.Extend(b.Genesis(), 12)
	type faultFunc = func(*chain.Block) *chain.Block
	faults := []struct {
		name string
		f    faultFunc
	}{
		{"block signature", func(bl *chain.Block) *chain.Block {
			return chaintest.Corrupt(bl, func(bl *chain.Block) { bl.Signature = flipped(bl.Signature) })
		}},
		{"QC signature", func(bl *chain.Block) *chain.Block {
			return v.Reseal(chaintest.Corrupt(bl, func(bl *chain.Block) {
				s := bl.Data.QuorumCert.SignedLedgerInfo.Signatures
				s[len(s)-1].Sig = flipped(s[len(s)-1].Sig)
			}))
		}},
		{"short QC signature", func(bl *chain.Block) *chain.Block {
			return v.Reseal(chaintest.Corrupt(bl, func(bl *chain.Block) {
				s := bl.Data.QuorumCert.SignedLedgerInfo.Signatures
				s[0].Sig = s[0].Sig[:10]
			}))
		}},
		{"id", func(bl *chain.Block) *chain.Block {
			return chaintest.Corrupt(bl, func(bl *chain.Block) { bl.Data.TimestampUsecs++ })
		}},
		{"no quorum", func(bl *chain.Block) *chain.Block {
			return v.Reseal(chaintest.Corrupt(bl, func(bl *chain.Block) {
				li := &bl.Data.QuorumCert.SignedLedgerInfo
				li.Signatures = li.Signatures[:1]
			}))
		}},
	}
	// Block 0 carries the genesis QC, which has no signatures.
	type fault struct {
		kind int // index in faults
		at   int
	}
	cases := [][]fault{nil}
	for k := range faults {
		for _, at := range []int{1, 5, 11} {
			cases = append(cases, []fault{{k, at}})
		}
		for other := range faults {
			cases = append(cases, []fault{{k, 3}, {other, 7}}, []fault{{k, 7}, {other, 3}})
		}
	}
	for _, c := range cases {
		name := "valid"
		if len(c) > 0 {
			name = ""
			for _, f := range c {
				name += fmt.Sprintf("%s@%d/", faults[f.kind].name, f.at)
			}
		}
		t.Run(name, func(t *testing.T) {
			blocks := chaintest.Blocks(nodes)
			for _, f := range c {
				blocks[f.at] = faults[f.kind].f(blocks[f.at])
			}
			wantBad, wantErr := -1, error(nil)
			for i, bl := range blocks {
				if err := v.Verifier.VerifyBlock(bl); err != nil {
					wantBad, wantErr = i, err
					break
				}
			}
			if len(c) > 0 && wantErr == nil {
				t.Fatal("the faults do not fail VerifyBlock")
			}
			bad, err := v.Verifier.VerifyBlocks(blocks)
			if bad != wantBad {
				t.Fatalf("VerifyBlocks names block %d (%v), want %d (%v)", bad, err, wantBad, wantErr)
			}
			var got, want *chain.VerifyError
			switch {
			case wantErr == nil && err != nil:
				t.Fatalf("VerifyBlocks: %v, want nil", err)
			case wantErr == nil:
			case !errors.As(err, &got) || !errors.As(wantErr, &want) || got.Reason != want.Reason || got.Detail != want.Detail:
				t.Fatalf("VerifyBlocks: %v, want %v", err, wantErr)
			}
		})
	}
}
