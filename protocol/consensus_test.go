package protocol_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/protocol"
)

// consensusFixture is a short signed chain and messages built on it.
type consensusFixture struct {
	v        *chaintest.Validators
	nodes    []*chaintest.Node
	syncInfo chain.SyncInfo
	proposal *protocol.Proposal
	vote     *protocol.VoteMsg
	timeout  *protocol.TimeoutMsg
}

func newConsensusFixture(tb testing.TB) *consensusFixture {
	tb.Helper()
	v := chaintest.NewValidators(5, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 2, TxSize: 16})
	nodes := b.Extend(b.Genesis(), 4)
	tc := v.SignTC(5, v.Quorum())
	si := chain.SyncInfo{HighestCommitCert: nodes[3].QC, HighestQC: nodes[3].QC, HighestTC: &tc}
	last := nodes[3]
	commit, _ := chain.CommitInfo(last.Info, last.Block.QC())
	vote := v.Signers[1].SignVote(chain.VoteDataFor(last.Block, last.Info), commit)
	return &consensusFixture{
		v: v, nodes: nodes, syncInfo: si,
		proposal: &protocol.Proposal{Block: last.Block, SyncInfo: si},
		vote:     &protocol.VoteMsg{Vote: *vote, SyncInfo: si},
		timeout: &protocol.TimeoutMsg{Epoch: 1, Round: 6, Signature: v.Signers[2].SignTimeout(1, 6),
			SyncInfo: chain.SyncInfo{HighestCommitCert: v.Genesis.QC(), HighestQC: v.Genesis.QC()}},
	}
}

func encode(tb testing.TB, v any) []byte {
	tb.Helper()
	enc, err := chain.Encode(v)
	if err != nil {
		tb.Fatal(err)
	}
	return enc
}

func TestConsensusMsgValidate(t *testing.T) {
	fx := newConsensusFixture(t)
	tests := []struct {
		name    string
		msg     protocol.ConsensusMsg
		wantErr error
	}{
		{"proposal", protocol.ConsensusMsg{Proposal: fx.proposal}, nil},
		{"timeout", protocol.ConsensusMsg{Timeout: fx.timeout}, nil},
		{"both", protocol.ConsensusMsg{Proposal: fx.proposal, Timeout: fx.timeout}, protocol.ErrBadMessage},
		{"neither", protocol.ConsensusMsg{}, protocol.ErrBadMessage},
		{"proposal without block", protocol.ConsensusMsg{Proposal: &protocol.Proposal{SyncInfo: fx.syncInfo}}, protocol.ErrBadMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.msg.Validate(); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Validate() = %v, want %v", err, tt.wantErr)
			}
			_, err := protocol.DecodeConsensusMsg(encode(t, &tt.msg))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("DecodeConsensusMsg() = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestConsensusMsgRoundTrip(t *testing.T) {
	fx := newConsensusFixture(t)
	for _, m := range []*protocol.ConsensusMsg{{Proposal: fx.proposal}, {Timeout: fx.timeout}} {
		enc := encode(t, m)
		got, err := protocol.DecodeConsensusMsg(enc)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(encode(t, got), enc) {
			t.Fatal("re-encoding differs")
		}
		if err := fx.v.Verifier.VerifySyncInfo(syncInfoOf(got)); err != nil {
			t.Fatalf("decoded SyncInfo does not verify: %v", err)
		}
	}
	got, err := protocol.DecodeVoteMsg(encode(t, fx.vote))
	if err != nil {
		t.Fatal(err)
	}
	if err := fx.v.Verifier.VerifyVote(&got.Vote); err != nil {
		t.Fatalf("decoded vote does not verify: %v", err)
	}
}

func syncInfoOf(m *protocol.ConsensusMsg) *chain.SyncInfo {
	if m.Proposal != nil {
		return &m.Proposal.SyncInfo
	}
	return &m.Timeout.SyncInfo
}

// TestConsensusSizeLimits checks the limits against the largest honest
// messages: certificates signed by chain.MaxValidators validators with
// ed25519 identities, and a block of the largest payload.
func TestConsensusSizeLimits(t *testing.T) {
	fx := newConsensusFixture(t)
	sigs := make([]chain.Signature, chain.MaxValidators)
	for i := range sigs {
		id := fx.v.Signers[i%4].ID()
		sigs[i] = chain.Signature{Signer: id + peer.ID(rune('a'+i%26)), Sig: bytes.Repeat([]byte{0xff}, 64)}
	}
	big := func(qc chain.QuorumCert) chain.QuorumCert {
		qc.SignedLedgerInfo.Signatures = slices.Clone(sigs)
		qc.VoteData.Proposed.Version = 1 << 62
		qc.VoteData.Proposed.TimestampUsecs = 1 << 62
		qc.VoteData.Parent.TimestampUsecs = 1 << 62
		return qc
	}
	tc := chain.TimeoutCert{Epoch: 1 << 62, Round: 1 << 62, Signatures: sigs}
	si := chain.SyncInfo{HighestCommitCert: big(fx.nodes[3].QC), HighestQC: big(fx.nodes[2].QC), HighestTC: &tc}
	if n := len(encode(t, &si)); n > protocol.MaxSyncInfoSize {
		t.Fatalf("largest SyncInfo is %d bytes, limit %d", n, protocol.MaxSyncInfoSize)
	}
	if n := len(encode(t, &si.HighestQC)); n > protocol.MaxQCSize {
		t.Fatalf("largest QC is %d bytes, limit %d", n, protocol.MaxQCSize)
	}
	vote := *fx.vote
	vote.SyncInfo = si
	if n := len(encode(t, &vote)); n > protocol.MaxVoteMsgSize {
		t.Fatalf("largest vote is %d bytes, limit %d", n, protocol.MaxVoteMsgSize)
	}
	to := &protocol.TimeoutMsg{Epoch: 1 << 62, Round: 1 << 62, Signature: sigs[0], SyncInfo: si}
	if n := len(encode(t, &protocol.ConsensusMsg{Timeout: to})); n > protocol.MaxTimeoutMsgSize {
		t.Fatalf("largest timeout is %d bytes, limit %d", n, protocol.MaxTimeoutMsgSize)
	}
	if protocol.MaxProposalSize < chain.MaxEncodedBlockSize+protocol.MaxSyncInfoSize ||
		protocol.MaxConsensusMsgSize < protocol.MaxProposalSize || protocol.MaxConsensusMsgSize < protocol.MaxTimeoutMsgSize {
		t.Fatal("a proposal or timeout limit is below its parts")
	}
	tooBig := make([]byte, protocol.MaxVoteMsgSize+1)
	if _, err := protocol.DecodeVoteMsg(tooBig); !errors.Is(err, chain.ErrDecode) {
		t.Fatalf("oversize vote: %v, want ErrDecode", err)
	}
}

// addSeeds adds each encoding and a few mutations of it to the corpus.
func addSeeds(f *testing.F, encs ...[]byte) {
	for _, enc := range encs {
		f.Add(enc)
		f.Add(enc[:len(enc)/2])
		f.Add(append(slices.Clone(enc), 0x00))
		mid := slices.Clone(enc)
		mid[len(mid)/2] ^= 0x40
		f.Add(mid)
	}
}

// roundTrip decodes data with decode; a success must re-encode to bytes
// that decode again to a value with the very same encoding.
func roundTrip[T any](t *testing.T, data []byte, decode func([]byte) (*T, error)) {
	t.Helper()
	v, err := decode(data)
	if err != nil {
		if !errors.Is(err, chain.ErrDecode) && !errors.Is(err, protocol.ErrBadMessage) && !errors.Is(err, protocol.ErrBadGossip) {
			t.Fatalf("decode error %v wraps none of ErrDecode, ErrBadMessage, ErrBadGossip", err)
		}
		return
	}
	enc1, err := chain.Encode(v)
	if err != nil {
		t.Fatalf("decoded value does not encode: %v", err)
	}
	w, err := decode(enc1)
	if err != nil {
		t.Fatalf("re-encoding %x does not decode: %v", enc1, err)
	}
	enc2, err := chain.Encode(w)
	if err != nil {
		t.Fatalf("second encode: %v", err)
	}
	if !bytes.Equal(enc1, enc2) {
		t.Fatalf("encodings differ:\n%x\n%x", enc1, enc2)
	}
}

func decodeAs[T any](limit int) func([]byte) (*T, error) {
	return func(data []byte) (*T, error) {
		var v T
		if err := chain.Decode(data, limit, &v); err != nil {
			return nil, err
		}
		return &v, nil
	}
}

func FuzzDecodeConsensusMsg(f *testing.F) {
	fx := newConsensusFixture(f)
	addSeeds(f, encode(f, &protocol.ConsensusMsg{Proposal: fx.proposal}), encode(f, &protocol.ConsensusMsg{Timeout: fx.timeout}))
	f.Fuzz(func(t *testing.T, data []byte) { roundTrip(t, data, protocol.DecodeConsensusMsg) })
}

func FuzzDecodeVoteMsg(f *testing.F) {
	fx := newConsensusFixture(f)
	addSeeds(f, encode(f, fx.vote))
	f.Fuzz(func(t *testing.T, data []byte) { roundTrip(t, data, protocol.DecodeVoteMsg) })
}

func FuzzDecodeProposal(f *testing.F) {
	fx := newConsensusFixture(f)
	addSeeds(f, encode(f, fx.proposal))
	f.Fuzz(func(t *testing.T, data []byte) {
		roundTrip(t, data, decodeAs[protocol.Proposal](protocol.MaxProposalSize))
	})
}

func FuzzDecodeTimeoutMsg(f *testing.F) {
	fx := newConsensusFixture(f)
	addSeeds(f, encode(f, fx.timeout))
	f.Fuzz(func(t *testing.T, data []byte) {
		roundTrip(t, data, decodeAs[protocol.TimeoutMsg](protocol.MaxTimeoutMsgSize))
	})
}
