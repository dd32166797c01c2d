package chain_test

import (
	"bytes"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
)

func TestVerifyBlock(t *testing.T) {
	f := newFixture(t)
	v := f.v
	// mut returns a copy of the round-4 block changed by fn, with its id
	// recomputed and its author's signature renewed, so that only the rule
	// fn breaks fails.
	mut := func(fn func(*chain.Block)) func() *chain.Block {
		return func() *chain.Block { return v.Reseal(chaintest.Corrupt(f.block(), fn)) }
	}
	// rawMut is mut without the id and signature renewal.
	rawMut := func(fn func(*chain.Block)) func() *chain.Block {
		return func() *chain.Block { return chaintest.Corrupt(f.block(), fn) }
	}
	// genesisMut returns a copy of the genesis block changed by fn, with its
	// id recomputed.
	genesisMut := func(fn func(*chain.Block)) func() *chain.Block { return rehashed(v.Genesis.Block, fn) }
	// withEpoch moves the block and its QC to epoch.
	withEpoch := func(epoch uint64) func(*chain.Block) {
		return func(b *chain.Block) {
			f.setQCEpoch(&b.Data.QuorumCert, epoch)
			b.Data.Epoch = epoch
		}
	}
	parent := f.nodes[2].Info
	txs := func(n, size int) [][]byte {
		p := make([][]byte, n)
		for i := range p {
			p[i] = bytes.Repeat([]byte{byte(i) | 1}, size)
		}
		return p
	}

	tests := []struct {
		name    string
		block   func() *chain.Block
		wantErr error
		soft    bool
	}{
		{"valid proposal", f.block, nil, false},
		{"valid genesis", v.Genesis.Block, nil, false},
		{"first block on genesis", func() *chain.Block { return f.nodes[0].Block }, nil, false},

		{"id does not match data", rawMut(func(b *chain.Block) { b.Data.TimestampUsecs++ }), chain.ErrBlockID, false},
		{"id of another block", rawMut(func(b *chain.Block) { b.ID = f.nodes[2].Block.ID }), chain.ErrBlockID, false},

		{"kind zero", mut(func(b *chain.Block) { b.Data.Kind = 0 }), chain.ErrBlockKind, false},
		{"kind three", mut(func(b *chain.Block) { b.Data.Kind = 3 }), chain.ErrBlockKind, false},

		{"proposal without author", rehashed(f.block, func(b *chain.Block) { b.Data.Author = "" }), chain.ErrMalformed, false},
		{"proposal without signature", rawMut(func(b *chain.Block) { b.Signature = nil }), chain.ErrMalformed, false},
		{"genesis with round", genesisMut(func(b *chain.Block) { b.Data.Round = 1 }), chain.ErrMalformed, false},
		{"genesis with author", genesisMut(func(b *chain.Block) { b.Data.Author = v.Signers[0].ID() }), chain.ErrMalformed, false},
		{"genesis with signature", genesisMut(func(b *chain.Block) { b.Signature = v.Signers[0].Sign(b.ID) }), chain.ErrMalformed, false},
		{"genesis with two payload entries", genesisMut(func(b *chain.Block) { b.Data.Payload = append(b.Data.Payload, []byte{1}) }), chain.ErrMalformed, false},
		{"genesis payload not a hash", genesisMut(func(b *chain.Block) { b.Data.Payload[0] = b.Data.Payload[0][:31] }), chain.ErrMalformed, false},
		{"genesis with QC", genesisMut(func(b *chain.Block) { b.Data.QuorumCert = v.Genesis.QC() }), chain.ErrMalformed, false},

		{"genesis of another chain", func() *chain.Block {
			g := &chain.Genesis{ChainID: "other", TimestampUsecs: v.Genesis.TimestampUsecs, Validators: v.Set}
			return g.Block()
		}, chain.ErrGenesis, false},
		{"genesis of another validator set", chaintest.NewValidators(2, 4).Genesis.Block, chain.ErrGenesis, false},

		{"author not a validator", func() *chain.Block {
			b := f.block()
			return chain.NewProposal(f.outsider, b.Round(), b.Data.TimestampUsecs, b.Data.QuorumCert, b.Data.Payload)
		}, chain.ErrUnknownSigner, false},
		{"signed by another validator", rawMut(func(b *chain.Block) { b.Signature = v.Leader(b.Round() + 1).Sign(b.ID) }), chain.ErrBadSignature, false},
		{"signature bit flipped", rawMut(func(b *chain.Block) { b.Signature = flipped(b.Signature) }), chain.ErrBadSignature, false},
		{"signature truncated", rawMut(func(b *chain.Block) { b.Signature = b.Signature[:63] }), chain.ErrBadSignature, false},

		{"round equals parent's", mut(func(b *chain.Block) { b.Data.Round = parent.Round }), chain.ErrRound, false},
		{"round below parent's", mut(func(b *chain.Block) { b.Data.Round = parent.Round - 1 }), chain.ErrRound, false},

		{"epoch differs from parent's", mut(func(b *chain.Block) { b.Data.Epoch = 2 }), chain.ErrEpoch, false},
		{"epoch behind the validator set", mut(withEpoch(0)), chain.ErrEpoch, false},
		{"epoch ahead of the validator set", mut(withEpoch(2)), chain.ErrEpoch, true},

		{"timestamp equals parent's", mut(func(b *chain.Block) { b.Data.TimestampUsecs = parent.TimestampUsecs }), chain.ErrTimestamp, false},
		{"timestamp before parent's", mut(func(b *chain.Block) { b.Data.TimestampUsecs = parent.TimestampUsecs - 1 }), chain.ErrTimestamp, false},

		{"no transactions", mut(func(b *chain.Block) { b.Data.Payload = nil }), nil, false},
		{"most transactions", mut(func(b *chain.Block) { b.Data.Payload = txs(chain.MaxBlockTxs, 1) }), nil, false},
		{"too many transactions", mut(func(b *chain.Block) { b.Data.Payload = txs(chain.MaxBlockTxs+1, 1) }), chain.ErrPayload, false},
		{"empty transaction", mut(func(b *chain.Block) { b.Data.Payload[1] = nil }), chain.ErrPayload, false},
		{"largest transaction", mut(func(b *chain.Block) { b.Data.Payload = txs(1, chain.MaxTxSize) }), nil, false},
		{"transaction too large", mut(func(b *chain.Block) { b.Data.Payload = txs(1, chain.MaxTxSize+1) }), chain.ErrPayload, false},
		{"largest payload", mut(func(b *chain.Block) {
			b.Data.Payload = txs(chain.MaxBlockPayload/chain.MaxTxSize, chain.MaxTxSize)
		}), nil, false},
		{"payload too large", mut(func(b *chain.Block) {
			b.Data.Payload = append(txs(chain.MaxBlockPayload/chain.MaxTxSize, chain.MaxTxSize), []byte{1})
		}), chain.ErrPayload, false},

		{"QC lacks a quorum", mut(func(b *chain.Block) {
			sl := &b.Data.QuorumCert.SignedLedgerInfo
			sl.Signatures = sl.Signatures[:2]
		}), chain.ErrNoQuorum, false},
		{"QC signer not a validator", mut(func(b *chain.Block) {
			sl := &b.Data.QuorumCert.SignedLedgerInfo
			sl.Signatures[0] = chain.Signature{Signer: f.outsider.ID(), Sig: f.outsider.Sign(sl.LedgerInfo.Hash())}
			sortSigs(sl.Signatures)
		}), chain.ErrUnknownSigner, false},
		{"QC signature bit flipped", mut(func(b *chain.Block) {
			sl := &b.Data.QuorumCert.SignedLedgerInfo
			sl.Signatures[1].Sig = flipped(sl.Signatures[1].Sig)
		}), chain.ErrBadSignature, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkVerifyErr(t, v.Verifier.VerifyBlock(tc.block()), tc.wantErr, tc.soft)
		})
	}
}

// rehashed returns a copy of base() changed by fn with its id recomputed but
// no signature renewal, for blocks that have no author to sign them.
func rehashed(base func() *chain.Block, fn func(*chain.Block)) func() *chain.Block {
	return func() *chain.Block {
		b := chaintest.Corrupt(base(), fn)
		b.ID = b.Data.Hash()
		return b
	}
}

func TestCheckWellFormedNeedsNoValidators(t *testing.T) {
	f := newFixture(t)
	// A block signed by a stranger is well formed: only VerifyBlock knows
	// the validators.
	b := f.block()
	stranger := chain.NewProposal(f.outsider, b.Round(), b.Data.TimestampUsecs, b.Data.QuorumCert, b.Data.Payload)
	if err := stranger.CheckWellFormed(); err != nil {
		t.Fatalf("CheckWellFormed: %v", err)
	}
	if err := stranger.CheckID(); err != nil {
		t.Fatalf("CheckID: %v", err)
	}
	checkVerifyErr(t, f.v.Verifier.VerifyBlock(stranger), chain.ErrUnknownSigner, false)
}

func TestVerifyParent(t *testing.T) {
	f := newFixture(t)
	fork := f.b.Child(f.nodes[1], f.nodes[2].Round()+1) // round 4 on round 2
	tests := []struct {
		name          string
		child, parent *chain.Block
		wantErr       error
	}{
		{"parent", f.nodes[3].Block, f.nodes[2].Block, nil},
		{"genesis is the parent of round 1", f.nodes[0].Block, f.v.Genesis.Block(), nil},
		{"fork child and its parent", fork.Block, f.nodes[1].Block, nil},
		{"grandparent", f.nodes[3].Block, f.nodes[1].Block, chain.ErrParentLink},
		{"child", f.nodes[2].Block, f.nodes[3].Block, chain.ErrParentLink},
		{"sibling on a fork", fork.Block, f.nodes[2].Block, chain.ErrParentLink},
		{"parent with another round in the QC", chaintest.Corrupt(f.nodes[3].Block, func(b *chain.Block) {
			b.Data.QuorumCert.VoteData.Proposed.Round++
		}), f.nodes[2].Block, chain.ErrParentLink},
		{"parent with another epoch in the QC", chaintest.Corrupt(f.nodes[3].Block, func(b *chain.Block) {
			b.Data.QuorumCert.VoteData.Proposed.Epoch++
		}), f.nodes[2].Block, chain.ErrParentLink},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkVerifyErr(t, chain.VerifyParent(tc.child, tc.parent), tc.wantErr, false)
		})
	}
}

func TestNewVerifierRejectsInvalidGenesis(t *testing.T) {
	v := chaintest.NewValidators(1, 4)
	for _, g := range []*chain.Genesis{
		{ChainID: "", Validators: v.Set},
		{ChainID: "has space", Validators: v.Set},
		{ChainID: "ok", Validators: nil},
	} {
		if _, err := chain.NewVerifier(g); err == nil {
			t.Errorf("NewVerifier(%+v) succeeded", g)
		}
	}
}
