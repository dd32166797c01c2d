package chain

import (
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"

	"filippo.io/edwards25519"
	"github.com/hdevalence/ed25519consensus"
	voied "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// smallOrderCanonical are the canonical encodings of the 8 points of small
// order (the torsion subgroup of edwards25519).
var smallOrderCanonical = []string{
	"0100000000000000000000000000000000000000000000000000000000000000",
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"0000000000000000000000000000000000000000000000000000000000000000",
	"0000000000000000000000000000000000000000000000000000000000000080",
	"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
	"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
	"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
	"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
}

// groupOrder is ℓ, the order of the prime-order subgroup.
var groupOrder, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)

// sigCase is one signature check of the cross-check: pub is the encoding
// of A as given (possibly non-canonical), want the verdict ZIP-215 gives,
// when the case is built to have one (0 leaves it to the agreement check).
type sigCase struct {
	name string
	pub  []byte
	h    Hash
	sig  []byte
	want int // 1 valid, -1 invalid, 0 unknown
}

// encodings returns the 14 encodings of small-order points (8 canonical,
// 6 not) and the non-canonical encodings of points of larger order, each
// checked against filippo.io/edwards25519.
func encodings(t *testing.T) (small, nonCanonical [][]byte) {
	t.Helper()
	distinct := map[string]bool{}
	for _, s := range smallOrderCanonical {
		enc, _ := hex.DecodeString(s)
		p, err := new(edwards25519.Point).SetBytes(enc)
		if err != nil {
			t.Fatalf("small-order encoding %s: %v", s, err)
		}
		if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) != 1 {
			t.Fatalf("%s is not of small order", s)
		}
		if !slices.Equal(p.Bytes(), enc) {
			t.Fatalf("%s is not canonical", s)
		}
		distinct[s] = true
		small = append(small, enc)
	}
	if len(distinct) != 8 {
		t.Fatalf("%d distinct small-order points, want 8", len(distinct))
	}
	// Non-canonical encodings: y+p for y < 19 (the only y with a second
	// encoding below 2^255), and x = 0 with the sign bit set.
	var candidates [][]byte
	for y := range 19 {
		enc := make([]byte, 32)
		for i := range enc {
			enc[i] = 0xff
		}
		enc[0] = byte(0xed + y)
		enc[31] = 0x7f
		candidates = append(candidates, enc, signFlipped(enc))
	}
	for _, enc := range small {
		candidates = append(candidates, signFlipped(enc))
	}
	nSmall := 0
	for _, enc := range candidates {
		p, err := new(edwards25519.Point).SetBytes(enc)
		if err != nil || slices.Equal(p.Bytes(), enc) {
			continue // not a point, or canonical
		}
		if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1 {
			small = append(small, enc)
			nSmall++
		} else {
			nonCanonical = append(nonCanonical, enc)
		}
	}
	if nSmall != 6 || len(nonCanonical) == 0 {
		t.Fatalf("%d non-canonical small-order encodings (want 6), %d of larger order", nSmall, len(nonCanonical))
	}
	return small, nonCanonical
}

func signFlipped(enc []byte) []byte {
	c := slices.Clone(enc)
	c[31] ^= 0x80
	return c
}

// testKey is an ed25519 key with its secret scalar, to sign with chosen R
// and A encodings.
type testKey struct {
	priv ed25519.PrivateKey
	a    *edwards25519.Scalar
	A    *edwards25519.Point
}

func newTestKey(rng *rand.Rand) testKey {
	seed := make([]byte, ed25519.SeedSize)
	fillRandom(rng, seed)
	priv := ed25519.NewKeyFromSeed(seed)
	h := sha512.Sum512(seed)
	a, err := edwards25519.NewScalar().SetBytesWithClamping(h[:32])
	if err != nil {
		panic(err)
	}
	return testKey{priv: priv, a: a, A: new(edwards25519.Point).ScalarBaseMult(a)}
}

func fillRandom(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

func randomScalar(rng *rand.Rand) *edwards25519.Scalar {
	b := make([]byte, 64)
	fillRandom(rng, b)
	s, err := edwards25519.NewScalar().SetUniformBytes(b)
	if err != nil {
		panic(err)
	}
	return s
}

// signRaw returns R || S with S = r + H(R || A || h)·a: a signature that
// satisfies the cofactored equation when R - [r]B and A - [a]B are of small
// order.
func signRaw(a, r *edwards25519.Scalar, rEnc, aEnc []byte, h Hash) []byte {
	d := sha512.New()
	d.Write(rEnc)
	d.Write(aEnc)
	d.Write(h[:])
	k, err := edwards25519.NewScalar().SetUniformBytes(d.Sum(nil))
	if err != nil {
		panic(err)
	}
	s := edwards25519.NewScalar().MultiplyAdd(k, a, r)
	return append(slices.Clone(rEnc), s.Bytes()...)
}

// withS returns sig with its S replaced by the 32-byte little-endian s.
func withS(sig []byte, s *big.Int) []byte {
	be := s.FillBytes(make([]byte, 32))
	slices.Reverse(be)
	return append(slices.Clone(sig[:32]), be...)
}

func sOf(sig []byte) *big.Int {
	le := slices.Clone(sig[32:])
	slices.Reverse(le)
	return new(big.Int).SetBytes(le)
}

func randomHash(rng *rand.Rand) Hash {
	var h Hash
	fillRandom(rng, h[:])
	return h
}

// sigCases builds the seeded cases of the cross-check.
func sigCases(t *testing.T) []sigCase {
	t.Helper()
	rng := rand.New(rand.NewPCG(215, 1))
	small, nonCanonical := encodings(t)
	torsion := make([]*edwards25519.Point, 8)
	for i, enc := range small[:8] {
		torsion[i], _ = new(edwards25519.Point).SetBytes(enc)
	}
	var cases []sigCase
	add := func(name string, pub []byte, h Hash, sig []byte, want int) {
		cases = append(cases, sigCase{name: name, pub: pub, h: h, sig: sig, want: want})
	}

	// Small-order A and R with S = 0 pass the cofactored equation for any
	// message; S = 1 or S = ℓ (a non-canonical 0) never pass.
	zero := make([]byte, 32)
	for i, a := range small {
		for j, r := range small {
			add(fmt.Sprintf("small A%d R%d S=0", i, j), a, randomHash(rng), append(slices.Clone(r), zero...), 1)
		}
		r := small[rng.IntN(len(small))]
		add(fmt.Sprintf("small A%d S=1", i), a, randomHash(rng), withS(append(slices.Clone(r), zero...), big.NewInt(1)), -1)
		add(fmt.Sprintf("small A%d S=l", i), a, randomHash(rng), withS(append(slices.Clone(r), zero...), groupOrder), -1)
	}

	for k := range 4 {
		key := newTestKey(rng)
		pub := key.A.Bytes()
		h := randomHash(rng)
		sig := ed25519.Sign(key.priv, h[:])
		add(fmt.Sprintf("key%d valid", k), pub, h, sig, 1)
		add(fmt.Sprintf("key%d other message", k), pub, randomHash(rng), sig, -1)
		add(fmt.Sprintf("key%d S+l", k), pub, h, withS(sig, new(big.Int).Add(sOf(sig), groupOrder)), -1)
		high := slices.Clone(sig)
		high[63] |= 0xe0
		add(fmt.Sprintf("key%d S high bits", k), pub, h, high, -1)
		for _, n := range []int{0, 32, 63, 65, 128} {
			bad := make([]byte, n)
			copy(bad, sig)
			add(fmt.Sprintf("key%d length %d", k, n), pub, h, bad, -1)
		}
		for f := range 16 {
			bit := rng.IntN(512)
			if f == 0 {
				bit = 255 // sign bit of R
			}
			flip := slices.Clone(sig)
			flip[bit/8] ^= 1 << (bit % 8)
			add(fmt.Sprintf("key%d sig bit %d", k, bit), pub, h, flip, -1)
			fh := h
			bit = rng.IntN(256)
			fh[bit/8] ^= 1 << (bit % 8)
			add(fmt.Sprintf("key%d hash bit %d", k, bit), pub, fh, sig, -1)
		}
		for f := range 8 {
			junk := slices.Clone(sig)
			fillRandom(rng, junk[:32])
			add(fmt.Sprintf("key%d random R %d", k, f), pub, h, junk, -1)
		}
		// Mixed-order R = [r]B + T and mixed-order A' = A + T: valid
		// under the cofactored equation (ZIP-215), not under the
		// cofactorless one.
		for i, tp := range torsion {
			r := randomScalar(rng)
			R := new(edwards25519.Point).ScalarBaseMult(r)
			mixedR := new(edwards25519.Point).Add(R, tp).Bytes()
			h := randomHash(rng)
			add(fmt.Sprintf("key%d R+T%d", k, i), pub, h, signRaw(key.a, r, mixedR, pub, h), 1)
			mixedA := new(edwards25519.Point).Add(key.A, tp).Bytes()
			add(fmt.Sprintf("key%d A+T%d", k, i), mixedA, h, signRaw(key.a, r, R.Bytes(), mixedA, h), 1)
			// A small-order R with S = 0 does not pass for a key of
			// large order.
			add(fmt.Sprintf("key%d small R%d S=0", k, i), pub, h, append(slices.Clone(small[i]), zero...), -1)
		}
		// Non-canonical encodings of points of larger order, as R and as A.
		for i, enc := range nonCanonical {
			add(fmt.Sprintf("key%d non-canonical R%d", k, i), pub, h, append(slices.Clone(enc), sig[32:]...), -1)
			if k == 0 {
				add(fmt.Sprintf("non-canonical A%d", i), enc, h, sig, -1)
			}
		}
	}
	return cases
}

// TestSigRulesAgree checks, on seeded cases that include the ZIP-215 edge
// cases (small-order and non-canonical encodings of A and R, mixed-order
// points, S ≥ ℓ, wrong lengths, flipped bits), that the single check, the
// batch check and github.com/hdevalence/ed25519consensus, the reference
// implementation of ZIP-215, give the same verdict, and the expected one
// where the case has one.
func TestSigRulesAgree(t *testing.T) {
	cases := sigCases(t)
	keys := make([]*voied.ExpandedPublicKey, len(cases))
	var valid, invalid []int
	for i, c := range cases {
		k, err := voied.NewExpandedPublicKey(c.pub)
		if err != nil {
			t.Fatalf("%s: key does not expand: %v", c.name, err)
		}
		keys[i] = k
		single := verifySig(k, c.h, c.sig)
		ref := ed25519consensus.Verify(c.pub, c.h[:], c.sig)
		if single != ref {
			t.Errorf("%s: single check %v, ed25519consensus %v", c.name, single, ref)
		}
		if c.want != 0 && single != (c.want > 0) {
			t.Errorf("%s: single check %v, want %v", c.name, single, c.want > 0)
		}
		if single {
			valid = append(valid, i)
		} else {
			invalid = append(invalid, i)
		}
	}
	if len(valid) < 200 || len(invalid) < 200 {
		t.Fatalf("%d valid and %d invalid cases, want at least 200 of each", len(valid), len(invalid))
	}

	rng := rand.New(rand.NewPCG(215, 2))
	check := func(name string, idx []int, want bool) {
		t.Helper()
		b := newSigBatch(len(idx))
		ref := ed25519consensus.NewPreallocatedBatchVerifier(len(idx))
		for _, i := range idx {
			c := &cases[i]
			b.add(keys[i], c.h, c.sig)
			ref.Add(c.pub, c.h[:], c.sig)
		}
		if got := b.verify(); got != want {
			t.Errorf("%s: batch check %v, want %v", name, got, want)
		}
		if got := ref.Verify(); got != want {
			t.Errorf("%s: ed25519consensus batch %v, want %v", name, got, want)
		}
	}
	// Every case in a batch of two with a valid signature: the batch
	// agrees with the single check.
	for i, c := range cases {
		other := valid[rng.IntN(len(valid))]
		pair := []int{i, other}
		rng.Shuffle(2, func(a, b int) { pair[a], pair[b] = pair[b], pair[a] })
		check(c.name+" in a pair", pair, slices.Contains(valid, i))
	}
	// All valid cases at once (past the size where the batch changes
	// method), and in batches of 10.
	check("all valid", valid, true)
	for start := 0; start < len(valid); start += 10 {
		check(fmt.Sprintf("valid %d..", start), valid[start:min(start+10, len(valid))], true)
	}
	// One invalid case among 15 valid ones spoils the batch.
	for _, i := range invalid {
		idx := make([]int, 0, 16)
		for range 15 {
			idx = append(idx, valid[rng.IntN(len(valid))])
		}
		idx = slices.Insert(idx, rng.IntN(16), i)
		check(cases[i].name+" among valid", idx, false)
	}
}

// TestSigKeysNotOnCurve checks that encodings of no curve point do not
// expand to keys, and that the reference implementation rejects every
// signature under them.
func TestSigKeysNotOnCurve(t *testing.T) {
	rng := rand.New(rand.NewPCG(215, 3))
	found := 0
	for found < 8 {
		enc := make([]byte, 32)
		fillRandom(rng, enc)
		if _, err := new(edwards25519.Point).SetBytes(enc); err == nil {
			continue
		}
		found++
		if _, err := voied.NewExpandedPublicKey(enc); err == nil {
			t.Errorf("key %x is no point but expands", enc)
		}
		sig := make([]byte, 64) // R = identity with S = 0 passes for a small-order key
		sig[0] = 1
		h := randomHash(rng)
		if ed25519consensus.Verify(enc, h[:], sig) {
			t.Errorf("ed25519consensus accepts a signature under key %x, which is no point", enc)
		}
	}
}

// FuzzSigRulesAgree checks on arbitrary keys, hashes and signatures that
// the single check, the batch check and ed25519consensus agree, and that
// none of them panics.
func FuzzSigRulesAgree(f *testing.F) {
	rng := rand.New(rand.NewPCG(215, 4))
	key := newTestKey(rng)
	pub := key.A.Bytes()
	fillerHash := randomHash(rng)
	filler := ed25519.Sign(key.priv, fillerHash[:])
	fillerKey, err := voied.NewExpandedPublicKey(pub)
	if err != nil {
		f.Fatal(err)
	}
	small, _ := hex.DecodeString(smallOrderCanonical[4])
	f.Add(pub, fillerHash[:], filler)
	f.Add(small, fillerHash[:], append(slices.Clone(small), make([]byte, 32)...))
	f.Add(pub, fillerHash[:], filler[:63])
	f.Fuzz(func(t *testing.T, pub, hb, sig []byte) {
		if len(pub) != 32 {
			return
		}
		var h Hash
		copy(h[:], hb)
		ref := ed25519consensus.Verify(pub, h[:], sig)
		k, err := voied.NewExpandedPublicKey(pub)
		if err != nil {
			if ref {
				t.Fatalf("ed25519consensus accepts a signature under %x, which does not expand", pub)
			}
			return
		}
		single := verifySig(k, h, sig)
		if single != ref {
			t.Fatalf("single check %v, ed25519consensus %v", single, ref)
		}
		b := newSigBatch(2)
		b.add(fillerKey, fillerHash, filler)
		b.add(k, h, sig)
		if got := b.verify(); got != single {
			t.Fatalf("batch check %v, single check %v", got, single)
		}
	})
}
