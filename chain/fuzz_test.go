package chain_test

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
)

// addSeeds adds each encoding and a few mutations of it to the corpus.
func addSeeds(f *testing.F, encs ...[]byte) {
	for _, enc := range encs {
		f.Add(enc)
		f.Add(enc[:len(enc)/2])
		f.Add(append(slices.Clone(enc), 0x00))
		mid := slices.Clone(enc)
		mid[len(mid)/2] ^= 0x40
		f.Add(mid)
		head := slices.Clone(enc)
		head[0] ^= 0x20 // another major type or length
		f.Add(head)
	}
}

// checkRoundTrip decodes data into a T. A failure must wrap ErrDecode; a
// success must re-encode to bytes that decode again and re-encode to the
// very same bytes, with the same hashes. It returns the decoded value.
func checkRoundTrip[T any, H comparable](t *testing.T, data []byte, maxSize int, hash func(*T) H) (*T, bool) {
	t.Helper()
	var v T
	if err := chain.Decode(data, maxSize, &v); err != nil {
		if !errors.Is(err, chain.ErrDecode) {
			t.Fatalf("Decode error %v does not wrap ErrDecode", err)
		}
		return nil, false
	}
	enc1, err := chain.Encode(&v)
	if err != nil {
		t.Fatalf("decoded value does not encode: %v", err)
	}
	var w T
	if err := chain.Decode(enc1, len(enc1), &w); err != nil {
		t.Fatalf("re-encoding %x does not decode: %v", enc1, err)
	}
	enc2, err := chain.Encode(&w)
	if err != nil {
		t.Fatalf("second encode: %v", err)
	}
	if !bytes.Equal(enc1, enc2) {
		t.Fatalf("encodings differ:\n%x\n%x", enc1, enc2)
	}
	if hash(&v) != hash(&w) {
		t.Fatalf("hash changed across a round trip")
	}
	return &v, true
}

func FuzzDecodeBlock(f *testing.F) {
	fx := newFixture(f)
	small := chaintest.NewBuilder(fx.v, chaintest.BuilderConfig{TxsPerBlock: 3, TxSize: 5}).Extend(fx.b.Genesis(), 1)[0]
	addSeeds(f, mustEncode(f, fx.nodes[3].Block), mustEncode(f, fx.v.Genesis.Block()), mustEncode(f, small.Block))
	verifier := fx.v.Verifier
	f.Fuzz(func(t *testing.T, data []byte) {
		blk, ok := checkRoundTrip(t, data, chain.MaxEncodedBlockSize, func(b *chain.Block) chain.Hash { return b.Data.Hash() })
		dec, err := chain.DecodeBlock(data)
		if !ok {
			if err == nil {
				t.Fatal("DecodeBlock accepts what Decode refuses")
			}
			return
		}
		if (err == nil) != (blk.CheckID() == nil) {
			t.Fatalf("DecodeBlock error %v disagrees with CheckID", err)
		}
		if err == nil && dec.ID != blk.ID {
			t.Fatal("DecodeBlock and Decode disagree")
		}
		_ = blk.CheckWellFormed()
		_ = verifier.VerifyBlock(blk)
		_ = blk.String()
		_ = blk.PayloadSize()
	})
}

func FuzzDecodeQuorumCert(f *testing.F) {
	fx := newFixture(f)
	gqc := fx.v.Genesis.QC()
	addSeeds(f, mustEncode(f, &fx.nodes[2].QC), mustEncode(f, &fx.nodes[0].QC), mustEncode(f, &gqc))
	verifier := fx.v.Verifier
	f.Fuzz(func(t *testing.T, data []byte) {
		qc, ok := checkRoundTrip(t, data, chain.MaxEncodedBlockSize, func(qc *chain.QuorumCert) [2]chain.Hash {
			return [2]chain.Hash{qc.Hash(), qc.VoteData.Hash()}
		})
		if ok {
			_ = verifier.VerifyQC(qc)
		}
	})
}

func FuzzDecodeTimeoutCert(f *testing.F) {
	fx := newFixture(f)
	tc := fx.v.SignTC(5, fx.v.Quorum())
	addSeeds(f, mustEncode(f, &tc), mustEncode(f, &chain.TimeoutCert{Epoch: 1, Round: 1}))
	verifier := fx.v.Verifier
	f.Fuzz(func(t *testing.T, data []byte) {
		tc, ok := checkRoundTrip(t, data, chain.MaxEncodedBlockSize, func(tc *chain.TimeoutCert) chain.Hash {
			to := tc.Timeout()
			return to.Hash()
		})
		if ok {
			_ = verifier.VerifyTC(tc)
		}
	})
}

func FuzzDecodeVote(f *testing.F) {
	fx := newFixture(f)
	vote := fx.v.Signers[1].SignVote(fx.voteData())
	addSeeds(f, mustEncode(f, vote))
	verifier := fx.v.Verifier
	f.Fuzz(func(t *testing.T, data []byte) {
		vote, ok := checkRoundTrip(t, data, chain.MaxEncodedBlockSize, func(v *chain.Vote) [2]chain.Hash {
			return [2]chain.Hash{v.LedgerInfo.Hash(), v.VoteData.Hash()}
		})
		if ok {
			_ = verifier.VerifyVote(vote)
		}
	})
}

func FuzzDecodeLedgerInfoWithSignatures(f *testing.F) {
	fx := newFixture(f)
	addSeeds(f, mustEncode(f, &fx.nodes[2].QC.SignedLedgerInfo), mustEncode(f, &fx.nodes[0].QC.SignedLedgerInfo))
	verifier := fx.v.Verifier
	f.Fuzz(func(t *testing.T, data []byte) {
		li, ok := checkRoundTrip(t, data, chain.MaxEncodedBlockSize, func(li *chain.LedgerInfoWithSignatures) chain.Hash {
			return li.LedgerInfo.Hash()
		})
		if ok {
			_ = verifier.VerifyLedgerInfo(li)
			_ = li.Signers()
		}
	})
}

// FuzzDecodeGenesis decodes the input both as a Genesis and as a
// ValidatorSet.
func FuzzDecodeGenesis(f *testing.F) {
	v := chaintest.NewValidatorsWithPower(1, []uint64{1, 2, 3})
	addSeeds(f, mustEncode(f, v.Genesis), mustEncode(f, v.Set), mustEncode(f, &chain.Genesis{ChainID: "x"}))
	f.Fuzz(func(t *testing.T, data []byte) {
		if g, ok := checkRoundTrip(t, data, 1<<20, (*chain.Genesis).Hash); ok && g.Validate() == nil {
			ver, err := chain.NewVerifier(g)
			if err != nil {
				t.Fatalf("NewVerifier of a valid genesis: %v", err)
			}
			if err := ver.VerifyBlock(g.Block()); err != nil {
				t.Fatalf("genesis block does not verify: %v", err)
			}
			qc := g.QC()
			if err := ver.VerifyQC(&qc); err != nil {
				t.Fatalf("genesis QC does not verify: %v", err)
			}
		}
		vs, ok := checkRoundTrip(t, data, 1<<20, func(vs *chain.ValidatorSet) chain.Hash {
			return chain.HashOf(chain.DomainGenesis, vs)
		})
		if ok {
			ids := vs.IDs()
			sorted := slices.IsSortedFunc(ids, func(a, b peer.ID) int { return bytes.Compare([]byte(a), []byte(b)) })
			if vs.Len() == 0 || vs.TotalPower() < uint64(vs.Len()) || !sorted {
				t.Fatalf("decoded an invalid validator set: %v", vs.Validators())
			}
		}
	})
}

func FuzzDecodeKV(f *testing.F) {
	kv, _ := chain.EncodeKV([]byte("key"), []byte("value"))
	f.Add(kv, []byte("k"), []byte(""))
	f.Add([]byte{chain.TxKindKV, 0x81, 0x00, 'k'}, bytes.Repeat([]byte{1}, chain.MaxKeySize+1), []byte("v"))
	f.Add([]byte{chain.TxKindKV, 0x00, 'k'}, []byte{}, []byte("v"))
	f.Add([]byte{0x02, 0x01, 'k', 'v'}, []byte("key"), bytes.Repeat([]byte{2}, 300))
	f.Fuzz(func(t *testing.T, tx, key, value []byte) {
		// Any transaction: decoding never panics, and a key/value one
		// re-encodes to a transaction no longer than itself (its length
		// prefix may have been in non-shortest form) with the same parts.
		if k, val, err := chain.DecodeKV(tx); err != nil {
			if !errors.Is(err, chain.ErrNotKV) {
				t.Fatalf("DecodeKV error %v is not ErrNotKV", err)
			}
		} else {
			if len(k) == 0 || len(k) > chain.MaxKeySize {
				t.Fatalf("decoded key of %d bytes", len(k))
			}
			enc, err := chain.EncodeKV(k, val)
			if err != nil {
				if len(tx) <= chain.MaxTxSize {
					t.Fatalf("EncodeKV of a decoded transaction: %v", err)
				}
				return
			}
			k2, v2, err := chain.DecodeKV(enc)
			if err != nil || !bytes.Equal(k, k2) || !bytes.Equal(val, v2) || len(enc) > len(tx) {
				t.Fatalf("round trip of %x gave %x: %q %q %v", tx, enc, k2, v2, err)
			}
		}
		// Any key and value: EncodeKV either refuses them or round-trips.
		enc, err := chain.EncodeKV(key, value)
		if err != nil {
			if len(key) > 0 && len(key) <= chain.MaxKeySize && len(key)+len(value)+4 <= chain.MaxTxSize {
				t.Fatalf("EncodeKV(%d-byte key, %d-byte value): %v", len(key), len(value), err)
			}
			return
		}
		k2, v2, err := chain.DecodeKV(enc)
		if err != nil || !bytes.Equal(key, k2) || !bytes.Equal(value, v2) {
			t.Fatalf("DecodeKV(EncodeKV(%q, %q)) = %q, %q, %v", key, value, k2, v2, err)
		}
	})
}

// FuzzAccumulatorFrontier rebuilds accumulators from arbitrary sizes and
// frontiers: never a panic, and an accepted frontier is kept as given.
func FuzzAccumulatorFrontier(f *testing.F) {
	acc := chain.NewAccumulator()
	for i := range 6 {
		acc.Append([]byte{byte(i)})
	}
	var fr []byte
	for _, h := range acc.Frontier() {
		fr = append(fr, h[:]...)
	}
	f.Add(uint64(6), fr)
	f.Add(uint64(0), []byte{})
	f.Add(uint64(1), bytes.Repeat([]byte{7}, 32))
	f.Add(uint64(5), bytes.Repeat([]byte{7}, 96))
	f.Add(uint64(math.MaxUint64), bytes.Repeat([]byte{7}, 64*32))
	f.Fuzz(func(t *testing.T, size uint64, frontier []byte) {
		hs := make([]chain.Hash, len(frontier)/chain.HashSize)
		for i := range hs {
			copy(hs[i][:], frontier[i*chain.HashSize:])
		}
		a, err := chain.AccumulatorFromFrontier(size, hs)
		if err != nil {
			return
		}
		if a.Size() != size || !slices.Equal(a.Frontier(), hs) {
			t.Fatalf("rebuilt accumulator has size %d, frontier %x", a.Size(), a.Frontier())
		}
		root := a.Root()
		c := a.Clone()
		if c.Root() != root || c.Size() != size {
			t.Fatal("clone differs")
		}
		if size < math.MaxUint64 {
			c.Append([]byte("tx"))
			if c.Size() != size+1 || a.Size() != size || a.Root() != root {
				t.Fatal("append to a clone changed the original or miscounted")
			}
		}
	})
}
