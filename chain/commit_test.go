package chain_test

import (
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
)

// TestCommitInfo applies the 3-chain rule to chains built with round gaps.
// Each case lists the rounds of the blocks built on genesis, in order; the
// rule is applied to a vote on the last block, whose QC certifies the one
// before it. wantCommit is the index of the committed block (-1 for
// genesis) or nil for no commit.
func TestCommitInfo(t *testing.T) {
	v := chaintest.NewValidators(1, 4)
	tests := []struct {
		name       string
		rounds     []uint64
		wantCommit *int
	}{
		{"first block on genesis", []uint64{1}, nil},
		{"second block commits genesis", []uint64{1, 2}, ptr(-1)},
		{"second block after a gap", []uint64{1, 3}, nil},
		{"first block after a gap", []uint64{2}, nil},
		{"gap after genesis", []uint64{2, 3}, nil},
		{"three consecutive rounds", []uint64{1, 2, 3}, ptr(0)},
		{"long consecutive chain", []uint64{1, 2, 3, 4, 5, 6}, ptr(3)},
		{"gap between B0 and B1", []uint64{1, 3, 4}, nil},
		{"gap between B1 and B2", []uint64{1, 2, 4}, nil},
		{"gaps in both", []uint64{1, 3, 5}, nil},
		{"consecutive after a gap", []uint64{1, 2, 4, 5, 6}, ptr(2)},
		{"gap just before the 3-chain", []uint64{1, 3, 4, 5}, ptr(1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 1})
			nodes := []*chaintest.Node{b.Genesis()}
			for _, r := range tc.rounds {
				nodes = append(nodes, b.Child(nodes[len(nodes)-1], r))
			}
			last := nodes[len(nodes)-1]
			got, ok := chain.CommitInfo(last.Info, last.Block.QC())
			want := chain.BlockInfo{}
			if tc.wantCommit != nil {
				want = nodes[*tc.wantCommit+1].Info
			}
			if ok != (tc.wantCommit != nil) || got != want {
				t.Fatalf("CommitInfo = %+v, %v; want %+v, %v", got, ok, want, tc.wantCommit != nil)
			}
			// The builder's QC on the last block carries the same commit,
			// and every QC and block of the chain verifies.
			if last.QC.CommitInfo() != want || last.QC.CommitsBlock() != ok {
				t.Fatalf("QC commits %+v, want %+v", last.QC.CommitInfo(), want)
			}
			for _, n := range nodes[1:] {
				if err := v.Verifier.VerifyBlock(n.Block); err != nil {
					t.Fatalf("round %d: VerifyBlock: %v", n.Round(), err)
				}
				if err := v.Verifier.VerifyQC(&n.QC); err != nil {
					t.Fatalf("round %d: VerifyQC: %v", n.Round(), err)
				}
			}
		})
	}
}

func TestGenesisQC(t *testing.T) {
	v := chaintest.NewValidators(1, 4)
	qc := v.Genesis.QC()
	info := v.Genesis.BlockInfo()
	if qc.CertifiedBlock() != info || qc.ParentBlock() != info || qc.CommitInfo() != info || !qc.CommitsBlock() {
		t.Fatalf("genesis QC does not certify, parent and commit the genesis block: %+v", qc)
	}
	if qc.Round() != 0 || qc.Epoch() != v.Set.Epoch() || len(qc.Signers()) != 0 {
		t.Fatalf("genesis QC round %d epoch %d signers %d", qc.Round(), qc.Epoch(), len(qc.Signers()))
	}
	if info.ID != v.Genesis.Block().ID || info.ExecutedStateID != chain.EmptyAccumulatorRoot || info.Version != 0 {
		t.Fatalf("genesis info %+v", info)
	}
	// A vote on the first block cannot commit anything: its parent and
	// grandparent are both genesis, at round 0.
	if got, ok := chain.CommitInfo(chain.BlockInfo{Epoch: 1, Round: 1}, &qc); ok || !got.IsEmpty() {
		t.Fatalf("CommitInfo on genesis QC = %+v, %v", got, ok)
	}
}

func ptr[T any](v T) *T { return &v }
