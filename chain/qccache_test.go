package chain_test

import (
	"errors"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
)

// TestVerifiedQCsRemembered: a QC that verified is remembered and found
// again by VerifyQC and VerifyBlock; a QC that differs from it in anything
// its verification reads is checked in full, and one that fails is not
// remembered.
func TestVerifiedQCsRemembered(t *testing.T) {
	v := chaintest.NewValidators(3, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 1, TxSize: 16, Seed: 3})
	nodes := b.Extend(b.Genesis(), 3)
	ver := v.Verifier
	qc := &nodes[1].QC
	if err := ver.VerifyQC(qc); err != nil {
		t.Fatal(err)
	}
	if err := ver.VerifyQC(qc); err != nil || ver.KnownQCs() != 1 {
		t.Fatalf("second VerifyQC: %v, %d known; want nil, 1", err, ver.KnownQCs())
	}
	// Block 2 carries the QC certifying block 1: found, not added again.
	if err := ver.VerifyBlock(nodes[2].Block); err != nil || ver.KnownQCs() != 1 {
		t.Fatalf("VerifyBlock with a known QC: %v, %d known; want nil, 1", err, ver.KnownQCs())
	}
	// VerifyBlock remembers the QC of a block it verified.
	if err := ver.VerifyBlock(nodes[1].Block); err != nil || ver.KnownQCs() != 2 {
		t.Fatalf("VerifyBlock: %v, %d known; want nil, 2", err, ver.KnownQCs())
	}

	for _, c := range []struct {
		name    string
		corrupt func(*chain.QuorumCert)
		wantErr error
	}{
		{"signature flipped", func(q *chain.QuorumCert) { q.SignedLedgerInfo.Signatures[0].Sig[5] ^= 1 }, chain.ErrBadSignature},
		{"signature dropped", func(q *chain.QuorumCert) {
			q.SignedLedgerInfo.Signatures = q.SignedLedgerInfo.Signatures[:1]
		}, chain.ErrNoQuorum},
		{"signer changed", func(q *chain.QuorumCert) {
			q.SignedLedgerInfo.Signatures[0].Signer = q.SignedLedgerInfo.Signatures[1].Signer
		}, chain.ErrDuplicateSigner},
		{"vote data changed", func(q *chain.QuorumCert) { q.VoteData.Proposed.ExecutedStateID[0] ^= 1 }, chain.ErrConsensusDataHash},
		{"ledger info changed", func(q *chain.QuorumCert) { q.SignedLedgerInfo.LedgerInfo.ConsensusDataHash[0] ^= 1 }, chain.ErrConsensusDataHash},
	} {
		bad := chaintest.CloneQC(qc)
		c.corrupt(bad)
		if err := ver.VerifyQC(bad); !errors.Is(err, c.wantErr) {
			t.Errorf("%s: VerifyQC = %v, want %v", c.name, err, c.wantErr)
		}
		blk := chaintest.CloneBlock(nodes[2].Block)
		blk.Data.QuorumCert = *bad
		v.Reseal(blk)
		if err := ver.VerifyBlock(blk); !errors.Is(err, c.wantErr) {
			t.Errorf("%s: VerifyBlock = %v, want %v", c.name, err, c.wantErr)
		}
		if ver.KnownQCs() != 2 {
			t.Errorf("%s: %d QCs known after a failure, want 2", c.name, ver.KnownQCs())
		}
	}
}

// TestVerifiedQCsBounded: the verifier remembers at most MaxVerifiedQCs
// QCs, forgetting the oldest first.
func TestVerifiedQCsBounded(t *testing.T) {
	v := chaintest.NewValidators(4, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{Seed: 4})
	nodes := b.Extend(b.Genesis(), chain.MaxVerifiedQCs+10)
	for _, n := range nodes {
		if err := v.Verifier.VerifyQC(&n.QC); err != nil {
			t.Fatal(err)
		}
	}
	if got := v.Verifier.KnownQCs(); got != chain.MaxVerifiedQCs {
		t.Fatalf("%d QCs known, want %d", got, chain.MaxVerifiedQCs)
	}
	// The newest stay; verifying the oldest again adds it back.
	if err := v.Verifier.VerifyQC(&nodes[len(nodes)-1].QC); err != nil || v.Verifier.KnownQCs() != chain.MaxVerifiedQCs {
		t.Fatalf("newest again: %v, %d known", err, v.Verifier.KnownQCs())
	}
	if err := v.Verifier.VerifyQC(&nodes[0].QC); err != nil || v.Verifier.KnownQCs() != chain.MaxVerifiedQCs {
		t.Fatalf("oldest again: %v, %d known", err, v.Verifier.KnownQCs())
	}
}
