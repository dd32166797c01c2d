package chain_test

import (
	"fmt"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
)

// benchBlock returns a block of 100 transactions of 100 bytes, carrying a
// QC signed by all n validators, and the validators.
func benchBlock(b *testing.B, n int) (*chain.Block, *chaintest.Validators) {
	b.Helper()
	v := chaintest.NewValidators(1, n)
	bl := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 100, TxSize: 100, Seed: 1})
	nodes := bl.Extend(bl.Genesis(), 3)
	return nodes[2].Block, v
}

func BenchmarkBlockEncode(b *testing.B) {
	blk, _ := benchBlock(b, 4)
	b.SetBytes(int64(len(mustEncode(b, blk))))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := chain.Encode(blk); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBlockDecode(b *testing.B) {
	blk, _ := benchBlock(b, 4)
	enc := mustEncode(b, blk)
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := chain.DecodeBlock(enc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBlockID measures the block id: canonical encoding of the block
// data and its hash.
func BenchmarkBlockID(b *testing.B) {
	blk, _ := benchBlock(b, 4)
	b.SetBytes(int64(len(mustEncode(b, &blk.Data))))
	b.ReportAllocs()
	for b.Loop() {
		if blk.Data.Hash() != blk.ID {
			b.Fatal("id changed")
		}
	}
}

// BenchmarkVerifyQC verifies a QC signed by every validator of sets of
// growing size: one ed25519 verification per signer. The verifier forgets
// the QC before each check; known=true measures the check of a QC that
// verified before.
func BenchmarkVerifyQC(b *testing.B) {
	for _, known := range []bool{false, true} {
		for _, n := range []int{4, 16, 64, 100} {
			b.Run(fmt.Sprintf("known=%v/n=%d", known, n), func(b *testing.B) {
				blk, v := benchBlock(b, n)
				qc := blk.QC()
				for b.Loop() {
					if !known {
						v.Verifier.ForgetQCs()
					}
					if err := v.Verifier.VerifyQC(qc); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkVerifyBlock verifies a 100-transaction block: id, author
// signature and the QC of its parent, which the verifier forgets before
// each check.
func BenchmarkVerifyBlock(b *testing.B) {
	for _, n := range []int{4, 100} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			blk, v := benchBlock(b, n)
			for b.Loop() {
				v.Verifier.ForgetQCs()
				if err := v.Verifier.VerifyBlock(blk); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyWindow verifies a committed range of 64 blocks of 100 ×
// 100 B signed by 4 validators, block by block as VerifyBlocks does and as
// a chain as VerifyChain does; ns/op is per window.
func BenchmarkVerifyWindow(b *testing.B) {
	v := chaintest.NewValidators(1, 4)
	bl := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 100, TxSize: 100, Seed: 1})
	blocks := chaintest.Blocks(bl.Extend(bl.Genesis(), 65))[1:]
	for _, c := range []struct {
		name   string
		verify func([]*chain.Block) (int, error)
	}{{"blocks", v.Verifier.VerifyBlocks}, {"chain", v.Verifier.VerifyChain}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				v.Verifier.ForgetQCs()
				if _, err := c.verify(blocks); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAccumulatorAppend appends 100-byte transactions to a growing
// accumulator.
func BenchmarkAccumulatorAppend(b *testing.B) {
	tx := make([]byte, 100)
	acc := chain.NewAccumulator()
	b.SetBytes(int64(len(tx)))
	b.ReportAllocs()
	for b.Loop() {
		acc.Append(tx)
	}
	if acc.Size() == 0 {
		b.Fatal("nothing appended")
	}
}
