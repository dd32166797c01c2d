package protocol

import (
	"errors"
	"fmt"

	"github.com/p2pnode/p2pnode/chain"
)

// Consensus messages. Proposals and timeouts travel on the consensus topic
// inside a ConsensusMsg; votes travel on the vote stream protocol to the
// leader of the next round, one VoteMsg per frame. Every message carries the
// sender's SyncInfo, so a receiver that is behind can catch up before it
// processes the message.

// Size limits of consensus messages. A limit is an upper bound on the
// canonical encoding of an honest message; decoding checks it before it
// allocates anything.
const (
	// maxSignatureSize bounds one encoded chain.Signature of a validator:
	// a 2-element array, the signer's peer id (38 bytes for an ed25519
	// identity, at most 64 here) and a 64-byte ed25519 signature, with
	// their headers.
	maxSignatureSize = 1 + 2 + 64 + 2 + 64
	// maxQCHeaderSize bounds an encoded quorum certificate without its
	// signatures: vote data (two block infos), the ledger info (a block
	// info and a hash) and the array headers.
	maxQCHeaderSize = 512
	// MaxQCSize bounds an encoded chain.QuorumCert signed by every member
	// of the largest validator set.
	MaxQCSize = maxQCHeaderSize + 3 + chain.MaxValidators*maxSignatureSize
	// MaxTCSize bounds an encoded chain.TimeoutCert signed by every member
	// of the largest validator set.
	MaxTCSize = 32 + chain.MaxValidators*maxSignatureSize
	// MaxSyncInfoSize bounds an encoded chain.SyncInfo: two QCs and a TC.
	MaxSyncInfoSize = 2*MaxQCSize + MaxTCSize + 8
	// MaxProposalSize caps an encoded Proposal: one block and a SyncInfo.
	MaxProposalSize = chain.MaxEncodedBlockSize + MaxSyncInfoSize + 8
	// MaxVoteMsgSize caps an encoded VoteMsg: a vote (vote data, ledger
	// info, author and signature) and a SyncInfo.
	MaxVoteMsgSize = 1024 + MaxSyncInfoSize
	// MaxTimeoutMsgSize caps an encoded TimeoutMsg.
	MaxTimeoutMsgSize = 32 + maxSignatureSize + MaxSyncInfoSize
	// MaxConsensusMsgSize caps an encoded ConsensusMsg, which holds a
	// proposal or a timeout.
	MaxConsensusMsgSize = MaxProposalSize + 8
)

// ErrBadMessage is the reason of consensus message validation errors: a
// message whose shape breaks the protocol, whatever its signatures.
var ErrBadMessage = errors.New("protocol: malformed consensus message")

// Proposal is a leader's block for its round, with the leader's SyncInfo,
// which justifies the round (a QC or TC of the round before).
type Proposal struct {
	_        struct{} `cbor:",toarray"`
	Block    *chain.Block
	SyncInfo chain.SyncInfo
}

// Validate checks the proposal's shape: a block is present.
func (p *Proposal) Validate() error {
	if p.Block == nil {
		return fmt.Errorf("%w: proposal without a block", ErrBadMessage)
	}
	return nil
}

// VoteMsg is a validator's vote, sent to the leader of the next round,
// with the voter's SyncInfo.
type VoteMsg struct {
	_        struct{} `cbor:",toarray"`
	Vote     chain.Vote
	SyncInfo chain.SyncInfo
}

// TimeoutMsg is a validator's signed statement that round Round of epoch
// Epoch timed out for it (Signature is over chain.Timeout{Epoch, Round}),
// broadcast with its SyncInfo.
type TimeoutMsg struct {
	_         struct{} `cbor:",toarray"`
	Epoch     uint64
	Round     uint64
	Signature chain.Signature
	SyncInfo  chain.SyncInfo
}

// ConsensusMsg is what the consensus topic carries: exactly one of a
// proposal and a timeout.
type ConsensusMsg struct {
	_        struct{} `cbor:",toarray"`
	Proposal *Proposal
	Timeout  *TimeoutMsg
}

// Validate checks that exactly one of the fields is set, and that a
// proposal has a block.
func (m *ConsensusMsg) Validate() error {
	switch {
	case m.Proposal != nil && m.Timeout != nil:
		return fmt.Errorf("%w: both a proposal and a timeout", ErrBadMessage)
	case m.Proposal != nil:
		return m.Proposal.Validate()
	case m.Timeout != nil:
		return nil
	default:
		return fmt.Errorf("%w: neither a proposal nor a timeout", ErrBadMessage)
	}
}

// DecodeConsensusMsg decodes a ConsensusMsg of at most MaxConsensusMsgSize
// bytes and validates its shape. Malformed bytes give an error wrapping
// chain.ErrDecode, a bad shape one wrapping ErrBadMessage; either is the
// sender's fault. Signatures are not checked.
func DecodeConsensusMsg(data []byte) (*ConsensusMsg, error) {
	var m ConsensusMsg
	if err := chain.Decode(data, MaxConsensusMsgSize, &m); err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// DecodeVoteMsg decodes a VoteMsg of at most MaxVoteMsgSize bytes. Malformed
// bytes give an error wrapping chain.ErrDecode. Signatures are not checked.
func DecodeVoteMsg(data []byte) (*VoteMsg, error) {
	var m VoteMsg
	if err := chain.Decode(data, MaxVoteMsgSize, &m); err != nil {
		return nil, err
	}
	return &m, nil
}
