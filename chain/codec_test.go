package chain_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
)

// cat concatenates byte slices into a new one.
func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// TestDecodeStrict feeds Decode encodings that differ from a valid one in a
// single way. Offsets below follow the canonical layouts: a BlockInfo is
// 0x87 epoch round 0x58 0x20 <id> ..., a Block is 0x83 0x58 0x20 <id> 0x87
// kind epoch round ..., a Genesis is 0x83 0x69 "chaintest" ....
func TestDecodeStrict(t *testing.T) {
	f := newFixture(t)
	bi := mustEncode(t, &f.nodes[3].Info) // epoch 1, round 4
	blk := mustEncode(t, f.nodes[3].Block)
	gen := mustEncode(t, f.v.Genesis)
	if bi[0] != 0x87 || bi[1] != 0x01 || bi[2] != 0x04 || bi[3] != 0x58 || blk[35] != 0x87 || gen[1] != 0x69 {
		t.Fatalf("unexpected layout: %x / %x / %x", bi[:4], blk[:36], gen[:2])
	}
	newBI := func() any { return new(chain.BlockInfo) }
	newBlock := func() any { return new(chain.Block) }
	newGenesis := func() any { return new(chain.Genesis) }
	nested := cat(bytes.Repeat([]byte{0x81}, 20), []byte{0x01})
	type (
		extraneous = *cbor.ExtraneousDataError
		indef      = *cbor.IndefiniteLengthError
		tags       = *cbor.TagsMdError
		typeErr    = *cbor.UnmarshalTypeError
		nesting    = *cbor.MaxNestedLevelError
	)

	tests := []struct {
		name    string
		data    []byte
		into    func() any
		maxSize int
		// cause, if set, is a pointer to the cbor error type the error
		// must also wrap.
		cause any
	}{
		{"trailing byte after a block info", cat(bi, []byte{0x00}), newBI, 0, new(extraneous)},
		{"trailing byte after a block", cat(blk, []byte{0x00}), newBlock, 0, new(extraneous)},
		{"two blocks", cat(blk, blk), newBlock, 0, new(extraneous)},
		{"indefinite-length array", cat([]byte{0x9f}, bi[1:], []byte{0xff}), newBI, 0, new(indef)},
		{"indefinite-length byte string", cat(bi[:3], []byte{0x5f}, bi[3:37], []byte{0xff}, bi[37:]), newBI, 0, new(indef)},
		{"indefinite-length text string", cat(gen[:1], []byte{0x7f}, gen[1:11], []byte{0xff}, gen[11:]), newGenesis, 0, new(indef)},
		{"self-describe tag on a block", cat([]byte{0xd9, 0xd9, 0xf7}, blk), newBlock, 0, new(tags)},
		{"tag on an integer", cat(bi[:1], []byte{0xc1}, bi[1:]), newBI, 0, new(tags)},
		{"block info array too short", cat([]byte{0x86}, bi[1:len(bi)-9]), newBI, 0, new(typeErr)},
		{"block info array too long", cat([]byte{0x88}, bi[1:], []byte{0x00}), newBI, 0, new(typeErr)},
		{"block array too short", cat([]byte{0x82}, blk[1:len(blk)-66]), newBlock, 0, new(typeErr)},
		{"hash of 31 bytes", cat(bi[:3], []byte{0x58, 31}, bi[5:36], bi[37:]), newBI, 0, nil},
		{"hash of 33 bytes", cat(bi[:3], []byte{0x58, 33}, bi[5:37], []byte{0}, bi[37:]), newBI, 0, nil},
		{"hash as a text string", cat(bi[:3], []byte{0x78, 32}, bytes.Repeat([]byte{'a'}, 32), bi[37:]), newBI, 0, nil},
		{"hash with a non-shortest length", cat(bi[:3], []byte{0x59, 0x00, 0x20}, bi[5:]), newBI, 0, nil},
		{"over the size limit", bi, newBI, len(bi) - 1, nil},
		{"nesting too deep", nested, newBI, 0, new(nesting)},
		{"negative epoch", cat(bi[:1], []byte{0x20}, bi[2:]), newBI, 0, new(typeErr)},
		{"negative block kind", cat(blk[:36], []byte{0x21}, blk[37:]), newBlock, 0, new(typeErr)},
		{"block kind over 255", cat(blk[:36], []byte{0x19, 0x01, 0x02}, blk[37:]), newBlock, 0, new(typeErr)},
		{"float round", cat(bi[:2], []byte{0xf9, 0x44, 0x00}, bi[3:]), newBI, 0, new(typeErr)},
		{"map instead of array", []byte{0xa1, 0x00, 0x00}, newBI, 0, new(typeErr)},
		{"invalid UTF-8 in chain id", cat(gen[:3], []byte{0xff}, gen[4:]), newGenesis, 0, nil},
		{"invalid UTF-8 in chain id as byte string", cat(gen[:1], []byte{0x49}, gen[2:3], []byte{0xff}, gen[4:]), newGenesis, 0, nil},
		{"truncated", blk[:len(blk)-1], newBlock, 0, nil},
		{"empty", nil, newBlock, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			maxSize := tc.maxSize
			if maxSize == 0 {
				maxSize = chain.MaxEncodedBlockSize
			}
			err := chain.Decode(tc.data, maxSize, tc.into())
			if !errors.Is(err, chain.ErrDecode) {
				t.Fatalf("Decode(%x) = %v, want %v", tc.data, err, chain.ErrDecode)
			}
			t.Log(err)
			if tc.cause != nil && !errors.As(err, tc.cause) {
				t.Fatalf("Decode error %v does not wrap %T", err, tc.cause)
			}
		})
	}
}

func TestDecodeBlock(t *testing.T) {
	f := newFixture(t)
	want := f.nodes[3].Block
	enc := mustEncode(t, want)
	got, err := chain.DecodeBlock(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mustEncode(t, got), enc) || got.ID != want.ID {
		t.Fatal("decoded block differs from the encoded one")
	}

	t.Run("over the size limit", func(t *testing.T) {
		_, err := chain.DecodeBlock(make([]byte, chain.MaxEncodedBlockSize+1))
		if !errors.Is(err, chain.ErrDecode) {
			t.Fatalf("got %v, want %v", err, chain.ErrDecode)
		}
	})
	t.Run("id does not match data", func(t *testing.T) {
		bad := chaintest.Corrupt(want, func(b *chain.Block) { b.ID[0] ^= 1 })
		_, err := chain.DecodeBlock(mustEncode(t, bad))
		checkVerifyErr(t, err, chain.ErrBlockID, false)
	})
}

// TestNonCanonicalInputHashes checks that hashes are over the canonical
// re-encoding: integers in non-shortest form decode to the same value, with
// the same hash, and a block so encoded keeps its id.
func TestNonCanonicalInputHashes(t *testing.T) {
	f := newFixture(t)
	orig := f.nodes[3].Block
	enc := mustEncode(t, orig)
	// Offsets 36, 37, 38: kind 2, epoch 1, round 4 in BlockData.
	if enc[36] != 0x02 || enc[37] != 0x01 || enc[38] != 0x04 {
		t.Fatalf("unexpected layout %x", enc[:40])
	}
	nonCanon := cat(enc[:36], []byte{0x18, 0x02, 0x19, 0x00, 0x01, 0x1a, 0, 0, 0, 0x04}, enc[39:])
	blk, err := chain.DecodeBlock(nonCanon)
	if err != nil {
		t.Fatalf("DecodeBlock(non-canonical): %v", err)
	}
	if blk.Data.Hash() != orig.ID || blk.ID != orig.ID {
		t.Fatalf("non-canonical block hashes to %s, want %s", blk.Data.Hash(), orig.ID)
	}
	if err := blk.CheckID(); err != nil {
		t.Fatal(err)
	}
	if err := f.v.Verifier.VerifyBlock(blk); err != nil {
		t.Fatal(err)
	}
	if re := mustEncode(t, blk); !bytes.Equal(re, enc) {
		t.Fatalf("re-encoding is not canonical:\n got %x\nwant %x", re, enc)
	}

	// The same for a BlockData value and a VoteData, through HashOf and Hash.
	data := mustEncode(t, &orig.Data)
	var d chain.BlockData
	if err := chain.Decode(cat(data[:3], []byte{0x18, 0x04}, data[4:]), len(data)+1, &d); err != nil {
		t.Fatal(err)
	}
	if d.Round != 4 || chain.HashOf(chain.DomainBlock, &d) != orig.ID || d.Hash() != orig.ID {
		t.Fatalf("non-canonical BlockData: round %d, hash %s, want %s", d.Round, d.Hash(), orig.ID)
	}
	vd := f.nodes[3].QC.VoteData
	venc := mustEncode(t, &vd)
	// 0x82 0x86 epoch round: round of the proposed block at offset 3.
	var gotVD chain.VoteData
	if err := chain.Decode(cat(venc[:3], []byte{0x18, venc[3]}, venc[4:]), len(venc)+1, &gotVD); err != nil {
		t.Fatal(err)
	}
	if gotVD != vd || gotVD.Hash() != vd.Hash() {
		t.Fatalf("non-canonical VoteData hashes to %s, want %s", gotVD.Hash(), vd.Hash())
	}
}

// validatorSetWire mirrors the encoding of a ValidatorSet so that tests can
// write sets the constructor would refuse.
type validatorSetWire struct {
	_          struct{} `cbor:",toarray"`
	Epoch      uint64
	Validators []chain.Validator
}

func TestDecodeValidatorSet(t *testing.T) {
	v := chaintest.NewValidators(1, 4)
	vals := v.Set.Validators()
	canonical := mustEncode(t, v.Set)
	secp, _, err := crypto.GenerateSecp256k1Key(rand.NewChaCha8([32]byte{1}))
	if err != nil {
		t.Fatal(err)
	}
	secpID, err := peer.IDFromPrivateKey(secp)
	if err != nil {
		t.Fatal(err)
	}
	with := func(fn func([]chain.Validator) []chain.Validator) []chain.Validator {
		return fn(slices.Clone(vals))
	}
	tooMany := make([]chain.Validator, chain.MaxValidators+1)
	for i := range tooMany {
		tooMany[i] = vals[0]
	}

	tests := []struct {
		name    string
		vals    []chain.Validator
		wantErr bool
	}{
		{"sorted", vals, false},
		{"unsorted", with(func(x []chain.Validator) []chain.Validator {
			slices.Reverse(x)
			return x
		}), false},
		{"empty", nil, true},
		{"duplicate id", with(func(x []chain.Validator) []chain.Validator { return append(x, x[2]) }), true},
		{"zero power", with(func(x []chain.Validator) []chain.Validator { x[1].Power = 0; return x }), true},
		{"secp256k1 id", with(func(x []chain.Validator) []chain.Validator { x[0].ID = secpID; return x }), true},
		{"id that is no multihash", with(func(x []chain.Validator) []chain.Validator { x[0].ID = "not an id"; return x }), true},
		{"total power over 2^60", with(func(x []chain.Validator) []chain.Validator {
			x[0].Power, x[1].Power = 1<<60, 1
			return x
		}), true},
		{"too many members", tooMany, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			enc := mustEncode(t, validatorSetWire{Epoch: 1, Validators: tc.vals})
			var got chain.ValidatorSet
			err := chain.Decode(enc, len(enc), &got)
			if tc.wantErr {
				t.Log(err)
				if !errors.Is(err, chain.ErrDecode) {
					t.Fatalf("got %v, want %v", err, chain.ErrDecode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// Any order decodes to the sorted set, which encodes canonically.
			if !slices.Equal(got.Validators(), vals) || got.Epoch() != 1 || got.TotalPower() != 4 {
				t.Fatalf("decoded %v, want %v", got.Validators(), vals)
			}
			if re := mustEncode(t, &got); !bytes.Equal(re, canonical) {
				t.Fatalf("re-encoded %x, want %x", re, canonical)
			}
		})
	}
}

func TestGenesisRoundTrip(t *testing.T) {
	v := chaintest.NewValidators(1, 4)
	enc := mustEncode(t, v.Genesis)
	var g chain.Genesis
	if err := chain.Decode(enc, len(enc), &g); err != nil {
		t.Fatal(err)
	}
	if g.Hash() != v.Genesis.Hash() || g.Block().ID != v.Genesis.Block().ID {
		t.Fatal("decoded genesis has another hash")
	}
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	// A chain id given as a byte string of valid UTF-8 is the same genesis.
	asBytes := cat([]byte{0x83, 0x49}, enc[2:])
	var g2 chain.Genesis
	if err := chain.Decode(asBytes, len(asBytes), &g2); err != nil {
		t.Fatal(err)
	}
	if g2.Hash() != v.Genesis.Hash() {
		t.Fatal("byte-string chain id changes the genesis hash")
	}
}

func TestParseHash(t *testing.T) {
	h := chain.HashBytes("test", []byte("x"))
	got, err := chain.ParseHash(h.String())
	if err != nil || got != h {
		t.Fatalf("ParseHash(%s) = %s, %v", h, got, err)
	}
	for _, s := range []string{"", "zz", h.String()[:62], h.String() + "00"} {
		if _, err := chain.ParseHash(s); err == nil {
			t.Errorf("ParseHash(%q) succeeded", s)
		}
	}
	if h.Short() != h.String()[:8] || h.IsZero() || !chain.ZeroHash.IsZero() {
		t.Fatal("Short or IsZero wrong")
	}
}
