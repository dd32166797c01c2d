package chain

// KnownQCs returns how many verified quorum certificates v remembers.
func (v *Verifier) KnownQCs() int { return v.known.len() }

// MaxVerifiedQCs is maxVerifiedQCs, for tests.
const MaxVerifiedQCs = maxVerifiedQCs

// ForgetQCs makes v forget every QC it remembers.
func (v *Verifier) ForgetQCs() {
	v.known.mu.Lock()
	defer v.known.mu.Unlock()
	clear(v.known.set)
	v.known.ring, v.known.next = v.known.ring[:0], 0
}
