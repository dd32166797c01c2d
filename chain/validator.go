package chain

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/oasisprotocol/curve25519-voi/curve"
	voied "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// maxTotalPower bounds the sum of voting power so quorum arithmetic never
// overflows.
const maxTotalPower = 1 << 60

// Validator is one member of a validator set.
type Validator struct {
	_ struct{} `cbor:",toarray"`
	// ID is the validator's libp2p peer id; it embeds its ed25519 key.
	ID peer.ID
	// Power is the validator's voting power (> 0).
	Power uint64
}

// ValidatorSet is the fixed set of validators of an epoch. It is immutable
// after construction and safe for concurrent use.
type ValidatorSet struct {
	epoch uint64
	vals  []Validator // sorted by ID
	// keys are the members' public keys, decompressed once for the many
	// signature checks of the epoch; keys[i] is vals[i]'s. They are only
	// read after construction.
	keys  []*voied.ExpandedPublicKey
	index map[peer.ID]int
	total uint64
}

// NewValidatorSet validates vals and returns the set for epoch. Every id must
// be an ed25519 libp2p identity (the key is embedded in the id) whose key
// decodes to a curve point not of small order, ids must be distinct, powers
// positive and their sum at most 2^60.
func NewValidatorSet(epoch uint64, vals []Validator) (*ValidatorSet, error) {
	if len(vals) == 0 {
		return nil, errors.New("chain: validator set is empty")
	}
	if len(vals) > MaxValidators {
		return nil, fmt.Errorf("chain: validator set has %d members, limit %d", len(vals), MaxValidators)
	}
	sorted := slices.Clone(vals)
	slices.SortFunc(sorted, func(a, b Validator) int { return bytes.Compare([]byte(a.ID), []byte(b.ID)) })
	vs := &ValidatorSet{
		epoch: epoch,
		vals:  sorted,
		keys:  make([]*voied.ExpandedPublicKey, len(sorted)),
		index: make(map[peer.ID]int, len(sorted)),
	}
	for i, v := range sorted {
		if _, dup := vs.index[v.ID]; dup {
			return nil, fmt.Errorf("chain: validator %s listed twice", v.ID)
		}
		if v.Power == 0 {
			return nil, fmt.Errorf("chain: validator %s has zero power", v.ID)
		}
		if v.Power > maxTotalPower-vs.total {
			return nil, fmt.Errorf("chain: total voting power exceeds %d", uint64(maxTotalPower))
		}
		key, err := verifyingKey(v.ID)
		if err != nil {
			return nil, err
		}
		vs.index[v.ID] = i
		vs.keys[i] = key
		vs.total += v.Power
	}
	return vs, nil
}

// ed25519Key extracts the ed25519 public key embedded in id.
func ed25519Key(id peer.ID) (ed25519.PublicKey, error) {
	pk, err := id.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("chain: validator id %q: %w", id, err)
	}
	if pk.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("chain: validator %s: key type %s, want Ed25519", id, pk.Type())
	}
	raw, err := pk.Raw()
	if err != nil {
		return nil, fmt.Errorf("chain: validator %s: %w", id, err)
	}
	return ed25519.PublicKey(raw), nil
}

// verifyingKey returns the ed25519 key embedded in id, decompressed for
// repeated signature checks. A key that is no curve point is an error: no
// signature could ever verify under it. So is a point of small order: the
// ZIP-215 rules accept signatures under such a key that anyone can make
// (S = 0 with a small-order R verifies for every message), so it would
// let anyone sign as that validator.
func verifyingKey(id peer.ID) (*voied.ExpandedPublicKey, error) {
	pub, err := ed25519Key(id)
	if err != nil {
		return nil, err
	}
	key, err := voied.NewExpandedPublicKey(voied.PublicKey(pub))
	if err != nil {
		return nil, fmt.Errorf("chain: validator %s: %w", id, err)
	}
	var y curve.CompressedEdwardsY
	copy(y[:], pub)
	var p curve.EdwardsPoint
	if _, err := p.SetCompressedY(&y); err != nil {
		return nil, fmt.Errorf("chain: validator %s: %w", id, err)
	}
	if p.IsSmallOrder() {
		return nil, fmt.Errorf("chain: validator %s: key is a point of small order", id)
	}
	return key, nil
}

// Epoch returns the epoch of the set.
func (vs *ValidatorSet) Epoch() uint64 { return vs.epoch }

// Len returns the number of validators.
func (vs *ValidatorSet) Len() int { return len(vs.vals) }

// Validators returns a copy of the members, sorted by id.
func (vs *ValidatorSet) Validators() []Validator { return slices.Clone(vs.vals) }

// IDs returns the members' ids, sorted.
func (vs *ValidatorSet) IDs() []peer.ID {
	ids := make([]peer.ID, len(vs.vals))
	for i, v := range vs.vals {
		ids[i] = v.ID
	}
	return ids
}

// Contains reports whether id is a member.
func (vs *ValidatorSet) Contains(id peer.ID) bool {
	_, ok := vs.index[id]
	return ok
}

// Power returns id's voting power, 0 for a non-member.
func (vs *ValidatorSet) Power(id peer.ID) uint64 {
	if i, ok := vs.index[id]; ok {
		return vs.vals[i].Power
	}
	return 0
}

// TotalPower returns the sum of all voting power.
func (vs *ValidatorSet) TotalPower() uint64 { return vs.total }

// QuorumPower returns the least voting power that is more than two thirds of
// the total.
func (vs *ValidatorSet) QuorumPower() uint64 { return vs.total*2/3 + 1 }

// HasQuorum reports whether power is more than two thirds of the total.
func (vs *ValidatorSet) HasQuorum(power uint64) bool { return power*3 > vs.total*2 }

type validatorSetWire struct {
	_          struct{} `cbor:",toarray"`
	Epoch      uint64
	Validators []Validator
}

// MarshalCBOR encodes the set as [epoch, [[id, power], ...]] sorted by id.
func (vs *ValidatorSet) MarshalCBOR() ([]byte, error) {
	return Encode(validatorSetWire{Epoch: vs.epoch, Validators: vs.vals})
}

// UnmarshalCBOR decodes and validates a set (see [NewValidatorSet]).
func (vs *ValidatorSet) UnmarshalCBOR(data []byte) error {
	var w validatorSetWire
	if err := decMode.Unmarshal(data, &w); err != nil {
		return err
	}
	nv, err := NewValidatorSet(w.Epoch, w.Validators)
	if err != nil {
		return err
	}
	*vs = *nv
	return nil
}
