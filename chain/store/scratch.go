package store

import "slices"

// Bounds of the buffers a store keeps between its write transactions.
const (
	maxScratchBuffers = 4
	maxScratchBuffer  = 8 << 20
)

// scratch hands out the buffers a write transaction encodes its runs in,
// and takes them back once the transaction ended, so that a commit does not
// allocate (and the collector clear and scan) megabytes of runs afresh.
// bbolt keeps a value it is given until its transaction ends: a buffer
// serves one value per transaction. Only write transactions use it, one at
// a time.
type scratch struct {
	free, used [][]byte
	// run is the state tree's node run the transaction wrote last, for
	// the store to read from memory once the transaction commits.
	run *nodeRun
}

// get returns an empty buffer of capacity at least n, for the transaction
// that runs.
func (s *scratch) get(n int) []byte {
	best := -1
	for i, b := range s.free {
		if cap(b) >= n && (best < 0 || cap(b) < cap(s.free[best])) {
			best = i
		}
	}
	var b []byte
	if best < 0 {
		b = make([]byte, 0, n)
	} else {
		b = s.free[best][:0]
		s.free = slices.Delete(s.free, best, best+1)
	}
	s.used = append(s.used, b)
	return b
}

// release takes back the buffers of the transaction that ended, keeping the
// largest few within bounds.
func (s *scratch) release() {
	for _, b := range s.used {
		if cap(b) <= maxScratchBuffer {
			s.free = append(s.free, b)
		}
	}
	clear(s.used)
	s.used = s.used[:0]
	slices.SortFunc(s.free, func(a, b []byte) int { return cap(b) - cap(a) })
	if len(s.free) > maxScratchBuffers {
		clear(s.free[maxScratchBuffers:])
		s.free = s.free[:maxScratchBuffers]
	}
}
