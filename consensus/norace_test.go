//go:build !race

package consensus_test

// raceEnabled reports whether the race detector is on: the slowest tests
// run fewer scenarios then.
const raceEnabled = false
