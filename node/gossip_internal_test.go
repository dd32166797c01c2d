package node

import (
	"log/slog"
	"testing"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/protocol"
)

// TestTopicValidators: a provable fault is rejected, what the node cannot
// judge yet is ignored, a valid message accepted with its decoded value.
func TestTopicValidators(t *testing.T) {
	v := chaintest.NewValidators(31, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 1, TxSize: 16})
	nodes := b.Extend(b.Genesis(), 4)
	good := chain.SyncInfo{HighestCommitCert: nodes[3].QC, HighestQC: nodes[3].QC}

	forged := good
	qc := chaintest.CloneQC(&nodes[3].QC)
	qc.SignedLedgerInfo.Signatures[0].Sig[0] ^= 1
	forged.HighestQC = *qc

	future := good
	fqc := chaintest.CloneQC(&nodes[3].QC)
	fqc.VoteData.Proposed.Epoch++
	fqc.VoteData.Parent.Epoch++
	fqc.SignedLedgerInfo.LedgerInfo.CommitInfo.Epoch++
	v.ResealQC(fqc)
	future.HighestQC = *fqc
	future.HighestCommitCert = *fqc

	proposal := &protocol.ConsensusMsg{Proposal: &protocol.Proposal{Block: nodes[3].Block, SyncInfo: good}}
	badBlock := &protocol.ConsensusMsg{Proposal: &protocol.Proposal{
		Block:    chaintest.Corrupt(nodes[3].Block, func(b *chain.Block) { b.Signature[0] ^= 1 }),
		SyncInfo: good,
	}}
	timeout := &protocol.ConsensusMsg{Timeout: &protocol.TimeoutMsg{
		Epoch: v.Set.Epoch(), Round: 5, Signature: v.Signers[1].SignTimeout(v.Set.Epoch(), 5), SyncInfo: good,
	}}

	var results []pubsub.ValidationResult
	val := &validators{
		verifier: v.Verifier,
		log:      slog.New(slog.DiscardHandler),
		result:   func(_ string, r pubsub.ValidationResult) { results = append(results, r) },
	}
	enc := func(m any) []byte {
		data, err := chain.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	tests := []struct {
		name  string
		check pubsub.ValidatorEx
		data  []byte
		want  pubsub.ValidationResult
	}{
		{"sync info", val.validateSyncInfo, enc(&protocol.SyncInfoMsg{SyncInfo: good}), pubsub.ValidationAccept},
		{"sync info garbage", val.validateSyncInfo, []byte{0x81, 0xff}, pubsub.ValidationReject},
		{"sync info forged QC", val.validateSyncInfo, enc(&protocol.SyncInfoMsg{SyncInfo: forged}), pubsub.ValidationReject},
		{"sync info future epoch", val.validateSyncInfo, enc(&protocol.SyncInfoMsg{SyncInfo: future}), pubsub.ValidationIgnore},
		{"proposal", val.validateConsensus, enc(proposal), pubsub.ValidationAccept},
		{"proposal bad signature", val.validateConsensus, enc(badBlock), pubsub.ValidationReject},
		{"proposal forged sync info", val.validateConsensus,
			enc(&protocol.ConsensusMsg{Proposal: &protocol.Proposal{Block: nodes[3].Block, SyncInfo: forged}}), pubsub.ValidationReject},
		{"timeout", val.validateConsensus, enc(timeout), pubsub.ValidationAccept},
		{"consensus empty", val.validateConsensus, enc(&protocol.ConsensusMsg{}), pubsub.ValidationReject},
		{"tx", val.validateTx, enc(&protocol.TxMsg{Txs: [][]byte{{1}}}), pubsub.ValidationAccept},
		{"tx empty", val.validateTx, enc(&protocol.TxMsg{Txs: [][]byte{{}}}), pubsub.ValidationReject},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			results = nil
			msg := &pubsub.Message{Message: &pb.Message{Data: tt.data, From: []byte(v.Signers[0].ID())}}
			got := tt.check(t.Context(), "", msg)
			if got != tt.want {
				t.Fatalf("result %v, want %v", got, tt.want)
			}
			if got == pubsub.ValidationAccept && msg.ValidatorData == nil {
				t.Fatal("accepted without decoded data")
			}
			if len(results) != 1 || results[0] != got {
				t.Fatalf("counted %v, want [%v]", results, got)
			}
		})
	}
}
