package chain_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
)

// fixture is a valid chain of four validators: genesis, then blocks of rounds
// 1 to 4. nodes[i] has round i+1; the QC of nodes[2] (round 3) commits
// nodes[0] (round 1), and nodes[3].Block carries that QC.
type fixture struct {
	v     *chaintest.Validators
	b     *chaintest.Builder
	nodes []*chaintest.Node
	// outsider is a signer that is not a validator of v.
	outsider *chain.Signer
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	v := chaintest.NewValidators(1, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 2, TxSize: 16, Seed: 1})
	return &fixture{
		v:        v,
		b:        b,
		nodes:    b.Extend(b.Genesis(), 4),
		outsider: chaintest.NewValidators(99, 1).Signers[0],
	}
}

// block returns a deep copy of the block of round 4.
func (f *fixture) block() *chain.Block { return chaintest.CloneBlock(f.nodes[3].Block) }

// qc returns a deep copy of the QC of round 3, which commits round 1.
func (f *fixture) qc() *chain.QuorumCert { return chaintest.CloneQC(&f.nodes[2].QC) }

// voteData returns the vote data of a vote on the block of round 4 and the
// commit info that vote carries.
func (f *fixture) voteData() (chain.VoteData, chain.BlockInfo) {
	n := f.nodes[3]
	vd := chain.VoteDataFor(n.Block, n.Info)
	commit, _ := chain.CommitInfo(n.Info, n.Block.QC())
	return vd, commit
}

// setQCEpoch moves every block info of qc to epoch and signs it again.
func (f *fixture) setQCEpoch(qc *chain.QuorumCert, epoch uint64) {
	qc.VoteData.Proposed.Epoch = epoch
	qc.VoteData.Parent.Epoch = epoch
	if qc.CommitsBlock() {
		qc.SignedLedgerInfo.LedgerInfo.CommitInfo.Epoch = epoch
	}
	f.v.ResealQC(qc)
}

// checkVerifyErr fails t unless err is nil when want is nil, or a
// *chain.VerifyError whose reason is want and whose softness is soft.
func checkVerifyErr(t *testing.T, err, want error, soft bool) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("got error %v, want none", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want %v", err, want)
	}
	var ve *chain.VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is not a *chain.VerifyError", err)
	}
	if ve.Reason != want {
		t.Fatalf("reason %v, want %v", ve.Reason, want)
	}
	if ve.Soft != soft || chain.IsSoft(err) != soft {
		t.Fatalf("soft = %v (IsSoft %v), want %v", ve.Soft, chain.IsSoft(err), soft)
	}
}

// flipped returns a copy of b with one bit of its first byte flipped.
func flipped(b []byte) []byte {
	c := slices.Clone(b)
	c[0] ^= 1
	return c
}

// sortSigs sorts signatures by signer, as a certificate carries them.
func sortSigs(sigs []chain.Signature) []chain.Signature {
	slices.SortFunc(sigs, func(a, b chain.Signature) int { return bytes.Compare([]byte(a.Signer), []byte(b.Signer)) })
	return sigs
}

func mustEncode(tb testing.TB, v any) []byte {
	tb.Helper()
	enc, err := chain.Encode(v)
	if err != nil {
		tb.Fatal(err)
	}
	return enc
}
