package chain

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"unicode/utf8"
)

// EmptyAccumulatorRoot is the RFC 6962 root of an empty transaction
// accumulator, SHA-256 of the empty string: the executed state of genesis.
var EmptyAccumulatorRoot = Hash(sha256.Sum256(nil))

// EmptyStateRoot is the state tree's root of the empty state: 32 zero
// bytes, the hash of an empty subtree (statetree.Placeholder).
var EmptyStateRoot Hash

// Genesis defines a chain: its id, its start time and its validator set.
// Every node of a chain starts from the same Genesis; its hash is the genesis
// block's payload, so two chains never share a block id.
type Genesis struct {
	_ struct{} `cbor:",toarray"`
	// ChainID names the chain; it scopes protocol ids and topic names, so it
	// is 1 to 64 characters of [A-Za-z0-9._-].
	ChainID        string
	TimestampUsecs uint64
	Validators     *ValidatorSet
}

// Validate checks g's fields.
func (g *Genesis) Validate() error {
	if err := ValidateChainID(g.ChainID); err != nil {
		return err
	}
	if g.Validators == nil {
		return errors.New("chain: genesis has no validator set")
	}
	return nil
}

// UnmarshalCBOR decodes g and rejects a chain id that is not valid UTF-8.
// The decoder accepts a CBOR byte string for a string field (peer ids need
// it), so without this check a chain id could decode to a value whose own
// encoding, a text string, no longer decodes.
func (g *Genesis) UnmarshalCBOR(data []byte) error {
	type wire Genesis // the same fields without this method
	var w wire
	if err := decMode.Unmarshal(data, &w); err != nil {
		return err
	}
	if !utf8.ValidString(w.ChainID) {
		return errors.New("chain: genesis chain id is not valid UTF-8")
	}
	*g = Genesis(w)
	return nil
}

// ValidateChainID checks that id can name a chain.
func ValidateChainID(id string) error {
	if id == "" || len(id) > MaxChainIDLen {
		return fmt.Errorf("chain: chain id must be 1 to %d characters, got %d", MaxChainIDLen, len(id))
	}
	for _, c := range id {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("chain: chain id %q has character %q outside [A-Za-z0-9._-]", id, c)
		}
	}
	return nil
}

// Hash returns the domain-separated hash of g.
func (g *Genesis) Hash() Hash { return HashOf(DomainGenesis, g) }

// Block returns the genesis block: round 0 of the validator set's epoch, no
// parent, no author, and the genesis hash as its only payload entry.
func (g *Genesis) Block() *Block {
	gh := g.Hash()
	b := &Block{Data: BlockData{
		Kind:           KindGenesis,
		Epoch:          g.Validators.Epoch(),
		Round:          0,
		TimestampUsecs: g.TimestampUsecs,
		Payload:        [][]byte{gh[:]},
	}}
	b.ID = b.Data.Hash()
	return b
}

// BlockInfo returns the executed info of the genesis block: an empty ledger.
func (g *Genesis) BlockInfo() BlockInfo {
	return g.Block().Info(EmptyAccumulatorRoot, EmptyStateRoot, 0)
}

// QC returns the genesis quorum certificate. It certifies the genesis block,
// names it as its own parent, commits it, and carries no signatures: it is
// trusted because it follows from the genesis itself.
func (g *Genesis) QC() QuorumCert {
	info := g.BlockInfo()
	vd := VoteData{Proposed: info, Parent: info}
	return QuorumCert{
		VoteData: vd,
		SignedLedgerInfo: LedgerInfoWithSignatures{
			LedgerInfo: LedgerInfo{CommitInfo: info, ConsensusDataHash: vd.Hash()},
		},
	}
}
