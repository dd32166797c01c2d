package chain

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	voied "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// Signer signs blocks, votes and timeouts with a validator's ed25519 key.
// It is safe for concurrent use.
type Signer struct {
	id   peer.ID
	priv ed25519.PrivateKey
}

// NewSigner returns a signer for an ed25519 libp2p private key.
func NewSigner(k crypto.PrivKey) (*Signer, error) {
	if k.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("chain: signer key type %s, want Ed25519", k.Type())
	}
	raw, err := k.Raw()
	if err != nil {
		return nil, fmt.Errorf("chain: signer key: %w", err)
	}
	if len(raw) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("chain: signer key has %d bytes, want %d", len(raw), ed25519.PrivateKeySize)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("chain: signer id: %w", err)
	}
	return &Signer{id: id, priv: ed25519.PrivateKey(raw)}, nil
}

// ID returns the signer's peer id.
func (s *Signer) ID() peer.ID { return s.id }

// Sign signs a domain-separated hash.
func (s *Signer) Sign(h Hash) []byte { return ed25519.Sign(s.priv, h[:]) }

// SignVote signs a vote for vd that commits commit (the zero BlockInfo to
// commit nothing).
func (s *Signer) SignVote(vd VoteData, commit BlockInfo) *Vote {
	li := LedgerInfo{CommitInfo: commit, ConsensusDataHash: vd.Hash()}
	return &Vote{VoteData: vd, LedgerInfo: li, Author: s.id, Signature: s.Sign(li.Hash())}
}

// SignTimeout signs a timeout for round of epoch.
func (s *Signer) SignTimeout(epoch, round uint64) Signature {
	t := Timeout{Epoch: epoch, Round: round}
	return Signature{Signer: s.id, Sig: s.Sign(t.Hash())}
}

// zip215 selects plain Ed25519 (no prehash, no context) checked with the
// ZIP-215 rules: cofactored verification, small-order and non-canonical
// encodings of A and R accepted, S required below the group order. Under
// these rules a signature verifies alone if and only if it verifies in any
// batch, so single and batch checks accept exactly the same signatures. It
// is never modified.
var zip215 = &voied.Options{Verify: voied.VerifyOptionsZIP_215}

// sigBatch collects signatures to check at once with the ZIP-215 rules of
// [verifySig]: a batch verifies if and only if every signature in it would
// verify alone, but a failure does not say which one failed. A nil batch
// stands for "check each signature as it comes". A batch is not safe for
// concurrent use.
type sigBatch struct {
	entries []sigEntry
	// discard drops what is added: checks through a discarding batch
	// check everything but the signatures.
	discard bool
}

type sigEntry struct {
	key *voied.ExpandedPublicKey
	h   Hash
	sig []byte
}

func newSigBatch(capacity int) *sigBatch {
	return &sigBatch{entries: make([]sigEntry, 0, capacity)}
}

// add queues sig over h by key; sig must not change until verify.
func (b *sigBatch) add(key *voied.ExpandedPublicKey, h Hash, sig []byte) {
	b.entries = append(b.entries, sigEntry{key: key, h: h, sig: sig})
}

// verify reports whether every queued signature is valid; an empty batch
// is valid. One signature is checked alone, which is cheaper. The batch
// equation weighs each signature with a random 128-bit scalar drawn from
// crypto/rand: a batch of valid signatures always passes, and one holding
// an invalid signature fails but with negligible probability (about
// 2^-128), so the verdict does not depend on the draw.
func (b *sigBatch) verify() bool {
	switch len(b.entries) {
	case 0:
		return true
	case 1:
		e := &b.entries[0]
		return verifySig(e.key, e.h, e.sig)
	}
	bv := voied.NewBatchVerifierWithCapacity(len(b.entries))
	for i := range b.entries {
		e := &b.entries[i]
		if len(e.sig) != ed25519.SignatureSize {
			return false // would fail the batch anyway; skip the work
		}
		bv.AddExpandedWithOptions(e.key, e.h[:], e.sig, zip215)
	}
	return bv.VerifyBatchOnly(rand.Reader)
}

// verifySig checks one signature over h by key with the ZIP-215 rules. A
// signature of the wrong length is invalid.
func verifySig(key *voied.ExpandedPublicKey, h Hash, sig []byte) bool {
	if len(sig) != ed25519.SignatureSize {
		return false
	}
	return voied.VerifyExpandedWithOptions(key, h[:], sig, zip215)
}
