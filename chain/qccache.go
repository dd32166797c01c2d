package chain

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
)

// maxVerifiedQCs bounds the quorum certificates a Verifier remembers.
const maxVerifiedQCs = 1024

// verifiedQCs remembers quorum certificates that verified, so that one
// arriving again (in a proposal, then in the proposal's SyncInfo, then in
// the syncer's and the pacemaker's checks) costs two hashes instead of its
// signature checks. A QC is known by a digest of everything its
// verification reads; at most maxVerifiedQCs are kept, the oldest forgotten
// first. Safe for concurrent use.
type verifiedQCs struct {
	mu   sync.Mutex
	set  map[Hash]struct{}
	ring []Hash // insertion order; next overwrites the oldest
	next int
}

func newVerifiedQCs() *verifiedQCs {
	return &verifiedQCs{set: make(map[Hash]struct{}, maxVerifiedQCs), ring: make([]Hash, 0, maxVerifiedQCs)}
}

// qcDigest digests what verifying qc reads: its vote data, its ledger info
// and every signature with its signer.
func qcDigest(qc *QuorumCert) Hash {
	h := sha256.New()
	vd, li := qc.VoteData.Hash(), qc.SignedLedgerInfo.LedgerInfo.Hash()
	h.Write(vd[:])
	h.Write(li[:])
	var n [binary.MaxVarintLen64]byte
	for _, s := range qc.SignedLedgerInfo.Signatures {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s.Signer)))])
		h.Write([]byte(s.Signer))
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s.Sig)))])
		h.Write(s.Sig)
	}
	var d Hash
	h.Sum(d[:0])
	return d
}

func (c *verifiedQCs) has(d Hash) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.set[d]
	return ok
}

func (c *verifiedQCs) add(d Hash) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.set[d]; ok {
		return
	}
	if len(c.ring) < maxVerifiedQCs {
		c.ring = append(c.ring, d)
	} else {
		delete(c.set, c.ring[c.next])
		c.ring[c.next] = d
		c.next = (c.next + 1) % maxVerifiedQCs
	}
	c.set[d] = struct{}{}
}

func (c *verifiedQCs) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.set)
}
