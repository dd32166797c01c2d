package chain

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
)

// BlockKind tells a genesis block from a proposal.
type BlockKind uint8

const (
	// KindGenesis is the first block of a chain. It has round 0, no parent,
	// no author and no signature; its payload holds the genesis hash.
	KindGenesis BlockKind = 1
	// KindProposal is a block proposed and signed by the leader of its round.
	KindProposal BlockKind = 2
)

func (k BlockKind) String() string {
	switch k {
	case KindGenesis:
		return "genesis"
	case KindProposal:
		return "proposal"
	default:
		return fmt.Sprintf("kind(%d)", uint8(k))
	}
}

// BlockData is the signed content of a block.
type BlockData struct {
	_     struct{} `cbor:",toarray"`
	Kind  BlockKind
	Epoch uint64
	Round uint64
	// TimestampUsecs is the proposer's time in microseconds since the Unix
	// epoch; strictly greater than the parent's.
	TimestampUsecs uint64
	// QuorumCert certifies the parent block. It is the zero value in a
	// genesis block.
	QuorumCert QuorumCert
	// Author proposed and signed the block; empty in a genesis block.
	Author peer.ID
	// Payload is the block's transactions, in order. A genesis block's payload
	// is exactly one entry: the 32-byte genesis hash.
	Payload [][]byte
}

// Hash returns the domain-separated hash of d, which is the block id.
func (d *BlockData) Hash() Hash { return HashOf(DomainBlock, d) }

// Block is a block as it travels and is stored: its id, its data and the
// author's signature over the id.
type Block struct {
	_         struct{} `cbor:",toarray"`
	ID        Hash
	Data      BlockData
	Signature []byte
}

// NewProposal builds and signs a proposal of round round on top of the block
// that parentQC certifies.
func NewProposal(s *Signer, round, timestampUsecs uint64, parentQC QuorumCert, payload [][]byte) *Block {
	b := &Block{Data: BlockData{
		Kind:           KindProposal,
		Epoch:          parentQC.Epoch(),
		Round:          round,
		TimestampUsecs: timestampUsecs,
		QuorumCert:     parentQC,
		Author:         s.ID(),
		Payload:        payload,
	}}
	b.ID = b.Data.Hash()
	b.Signature = s.Sign(b.ID)
	return b
}

// Epoch returns the block's epoch.
func (b *Block) Epoch() uint64 { return b.Data.Epoch }

// Round returns the block's round.
func (b *Block) Round() uint64 { return b.Data.Round }

// Author returns the block's author (empty for genesis).
func (b *Block) Author() peer.ID { return b.Data.Author }

// QC returns the quorum certificate of the block's parent.
func (b *Block) QC() *QuorumCert { return &b.Data.QuorumCert }

// ParentID returns the id of the block's parent (zero for genesis).
func (b *Block) ParentID() Hash { return b.Data.QuorumCert.VoteData.Proposed.ID }

// Payload returns the block's transactions (none for genesis).
func (b *Block) Payload() [][]byte {
	if b.IsGenesis() {
		return nil
	}
	return b.Data.Payload
}

// IsGenesis reports whether b is a genesis block.
func (b *Block) IsGenesis() bool { return b.Data.Kind == KindGenesis }

// Info returns b's BlockInfo given the result of executing it: the
// accumulator root, the state tree's root and the version after it.
func (b *Block) Info(executedStateID, stateRoot Hash, version uint64) BlockInfo {
	return BlockInfo{
		Epoch:           b.Data.Epoch,
		Round:           b.Data.Round,
		ID:              b.ID,
		ExecutedStateID: executedStateID,
		StateRoot:       stateRoot,
		Version:         version,
		TimestampUsecs:  b.Data.TimestampUsecs,
	}
}

// PayloadSize returns the sum of the sizes of b's transactions.
func (b *Block) PayloadSize() int {
	n := 0
	for _, tx := range b.Payload() {
		n += len(tx)
	}
	return n
}

// String returns a short form of b for logs.
func (b *Block) String() string {
	return fmt.Sprintf("[%s id=%s epoch=%d round=%d parent=%s txs=%d]",
		b.Data.Kind, b.ID.Short(), b.Data.Epoch, b.Data.Round, b.ParentID().Short(), len(b.Payload()))
}
