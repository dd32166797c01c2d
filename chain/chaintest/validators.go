package chaintest

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
)

// ChainID is the chain id of every genesis built here.
const ChainID = "chaintest"

// GenesisTime is the timestamp of every genesis built here (µs since the
// Unix epoch: 2026-01-01T00:00:00Z).
const GenesisTime uint64 = 1_767_225_600_000_000

// Validators is a validator set together with its private keys.
type Validators struct {
	// Keys are the validators' private keys, in the order of Set's ids.
	Keys []crypto.PrivKey
	// Signers sign with Keys, in the same order.
	Signers []*chain.Signer
	// Set is the validator set.
	Set *chain.ValidatorSet
	// Genesis is a genesis of the set, with chain id ChainID.
	Genesis *chain.Genesis
	// Verifier verifies against Genesis.
	Verifier *chain.Verifier
}

// Key returns the i-th ed25519 key derived from seed. Equal arguments give
// equal keys.
func Key(seed uint64, i int) crypto.PrivKey {
	r := rand.NewChaCha8(seedBytes(seed, uint64(i)))
	var s [ed25519.SeedSize]byte
	_, _ = r.Read(s[:])
	k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(s[:]))
	if err != nil {
		panic(err) // a 64-byte ed25519 key always unmarshals
	}
	return k
}

func seedBytes(seed, stream uint64) [32]byte {
	var b [32]byte
	for i := range 8 {
		b[i] = byte(seed >> (8 * i))
		b[8+i] = byte(stream >> (8 * i))
	}
	b[16] = 0x5e
	return b
}

// NewValidators returns n validators of power 1 derived from seed.
func NewValidators(seed uint64, n int) *Validators {
	powers := make([]uint64, n)
	for i := range powers {
		powers[i] = 1
	}
	return NewValidatorsWithPower(seed, powers)
}

// NewValidatorsWithPower returns one validator per entry of powers, derived
// from seed. Keys and Signers are sorted like the set's ids; the powers are
// assigned before sorting, so use Set.Power to read them back.
func NewValidatorsWithPower(seed uint64, powers []uint64) *Validators {
	type kv struct {
		key crypto.PrivKey
		id  peer.ID
		pow uint64
	}
	all := make([]kv, len(powers))
	for i, p := range powers {
		k := Key(seed, i)
		id, err := peer.IDFromPrivateKey(k)
		if err != nil {
			panic(err)
		}
		all[i] = kv{k, id, p}
	}
	slices.SortFunc(all, func(a, b kv) int { return bytes.Compare([]byte(a.id), []byte(b.id)) })
	v := &Validators{}
	members := make([]chain.Validator, len(all))
	for i, e := range all {
		s, err := chain.NewSigner(e.key)
		if err != nil {
			panic(err)
		}
		v.Keys = append(v.Keys, e.key)
		v.Signers = append(v.Signers, s)
		members[i] = chain.Validator{ID: e.id, Power: e.pow}
	}
	set, err := chain.NewValidatorSet(1, members)
	if err != nil {
		panic(fmt.Sprintf("chaintest: %v", err))
	}
	v.Set = set
	v.Genesis = &chain.Genesis{ChainID: ChainID, TimestampUsecs: GenesisTime, Validators: set}
	if v.Verifier, err = chain.NewVerifier(v.Genesis); err != nil {
		panic(fmt.Sprintf("chaintest: %v", err))
	}
	return v
}

// Signer returns the signer of id, or nil.
func (v *Validators) Signer(id peer.ID) *chain.Signer {
	for _, s := range v.Signers {
		if s.ID() == id {
			return s
		}
	}
	return nil
}

// Leader returns the round-robin leader of round: validator round mod n.
func (v *Validators) Leader(round uint64) *chain.Signer {
	return v.Signers[round%uint64(len(v.Signers))]
}

// Quorum returns the indexes of the fewest validators, lowest index first,
// whose power is a quorum.
func (v *Validators) Quorum() []int {
	var idx []int
	var power uint64
	for i, s := range v.Signers {
		if v.Set.HasQuorum(power) {
			break
		}
		idx = append(idx, i)
		power += v.Set.Power(s.ID())
	}
	return idx
}

// All returns the indexes of every validator.
func (v *Validators) All() []int {
	idx := make([]int, len(v.Signers))
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// SignLedgerInfo signs li by the validators at the given indexes and returns
// it with the signatures sorted by signer.
func (v *Validators) SignLedgerInfo(li chain.LedgerInfo, signers []int) chain.LedgerInfoWithSignatures {
	h := li.Hash()
	return chain.LedgerInfoWithSignatures{LedgerInfo: li, Signatures: v.sign(h, signers)}
}

func (v *Validators) sign(h chain.Hash, signers []int) []chain.Signature {
	sigs := make([]chain.Signature, 0, len(signers))
	for _, i := range signers {
		s := v.Signers[i]
		sigs = append(sigs, chain.Signature{Signer: s.ID(), Sig: s.Sign(h)})
	}
	slices.SortFunc(sigs, func(a, b chain.Signature) int { return bytes.Compare([]byte(a.Signer), []byte(b.Signer)) })
	return sigs
}

// SignQC returns a QC on vd committing commit (zero: nothing), signed by the
// validators at the given indexes.
func (v *Validators) SignQC(vd chain.VoteData, commit chain.BlockInfo, signers []int) chain.QuorumCert {
	li := chain.LedgerInfo{CommitInfo: commit, ConsensusDataHash: vd.Hash()}
	return chain.QuorumCert{VoteData: vd, SignedLedgerInfo: v.SignLedgerInfo(li, signers)}
}

// SignTC returns a timeout certificate for round, signed by the validators at
// the given indexes.
func (v *Validators) SignTC(round uint64, signers []int) chain.TimeoutCert {
	t := chain.Timeout{Epoch: v.Set.Epoch(), Round: round}
	return chain.TimeoutCert{Epoch: t.Epoch, Round: round, Signatures: v.sign(t.Hash(), signers)}
}
