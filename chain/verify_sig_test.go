package chain_test

import (
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
)

// idOfKey returns the peer id that embeds the 32-byte ed25519 key enc.
func idOfKey(t *testing.T, enc []byte) peer.ID {
	t.Helper()
	pk, err := crypto.UnmarshalEd25519PublicKey(enc)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestValidatorSetKeys checks that a validator set rejects a key that is no
// curve point, and one of small order (under which ZIP-215 accepts forged
// signatures).
func TestValidatorSetKeys(t *testing.T) {
	good := chaintest.NewValidators(1, 1).Set.IDs()[0]
	identity := make([]byte, 32)
	identity[0] = 1
	notPoint := make([]byte, 32)
	notPoint[0] = 2 // y = 2 is the y-coordinate of no point of edwards25519
	tests := []struct {
		name    string
		key     []byte
		wantErr bool
	}{
		{"identity point", identity, true},
		{"point of order 4", make([]byte, 32), true}, // y = 0
		{"not a point", notPoint, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vals := []chain.Validator{{ID: good, Power: 1}, {ID: idOfKey(t, tt.key), Power: 1}}
			vs, err := chain.NewValidatorSet(1, vals)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NewValidatorSet: %v, want error %v", err, tt.wantErr)
			}
			if err == nil && vs.Len() != 2 {
				t.Fatalf("set has %d members, want 2", vs.Len())
			}
		})
	}
}

// TestVerifyConcurrent verifies the same blocks from several goroutines
// with one verifier, which shares its validators' keys between them.
func TestVerifyConcurrent(t *testing.T) {
	v := chaintest.NewValidators(1, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 2, TxSize: 16, Seed: 1})
	blocks := chaintest.Blocks(b.Extend(b.Genesis(), 16))
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for g := range errs {
		wg.Go(func() {
			if g%2 == 0 {
				_, errs[g] = v.Verifier.VerifyBlocks(blocks)
				return
			}
			for _, bl := range blocks {
				if err := v.Verifier.VerifyBlock(bl); err != nil {
					errs[g] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for g, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", g, err)
		}
	}
}

// BenchmarkVerifyBlocks verifies a chain of 256 blocks of 100 transactions
// of 100 bytes, each with its author's signature and a QC signed by all 4
// validators, in one VerifyBlocks call; µs/block is the cost per block.
func BenchmarkVerifyBlocks(b *testing.B) {
	const n = 256
	v := chaintest.NewValidators(1, 4)
	bl := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 100, TxSize: 100, Seed: 1})
	blocks := chaintest.Blocks(bl.Extend(bl.Genesis(), n))
	b.ReportAllocs()
	for b.Loop() {
		if bad, err := v.Verifier.VerifyBlocks(blocks); err != nil {
			b.Fatalf("block %d: %v", bad, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/block")
}
