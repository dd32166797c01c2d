// Package chaintest builds deterministic validator sets and valid, fully
// signed chains for tests and benchmarks: blocks with quorum certificates and
// commit ledger infos, round gaps, forks, and helpers to corrupt any field
// for negative tests.
//
// Everything is derived from a seed, so a failing test can be replayed:
//
//	vals := chaintest.NewValidators(1, 4)          // seed 1, 4 validators
//	b := chaintest.NewBuilder(vals, chaintest.BuilderConfig{TxsPerBlock: 10, TxSize: 100})
//	nodes := b.Extend(b.Genesis(), 100)             // 100 blocks, consecutive rounds
//	last := nodes[len(nodes)-1]
//	_ = last.QC                                      // certifies last.Block; commits a 3-chain
//
// Executed state ids follow the chain's transaction accumulator, so a ledger
// that executes the built blocks reaches exactly the states their QCs certify.
package chaintest
