package statetree_test

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/statetree"
)

// chunk reads the chunk of up to n leaves from the key hash from and its
// proof.
func chunk(t *testing.T, tr *statetree.Tree, v uint64, from chain.Hash, n int) ([]statetree.KV, *statetree.RangeProof) {
	t.Helper()
	ls, err := tr.Leaves(v, from, n)
	if err != nil || len(ls) == 0 {
		t.Fatalf("leaves from %s: %d, %v", from.Short(), len(ls), err)
	}
	p, err := tr.RangeProof(v, ls[0].KeyHash, ls[len(ls)-1].KeyHash)
	if err != nil {
		t.Fatal(err)
	}
	kvs := make([]statetree.KV, len(ls))
	for i, l := range ls {
		kvs[i] = statetree.KV{Key: l.Key, Value: l.Value}
	}
	return kvs, p
}

// next returns the key hash right after kh.
func next(kh chain.Hash) chain.Hash {
	for i := len(kh) - 1; i >= 0; i-- {
		kh[i]++
		if kh[i] != 0 {
			break
		}
	}
	return kh
}

// TestSnapshotInChunks streams whole trees of several sizes in chunks of
// several sizes through a RangeVerifier and checks each chunk also alone.
func TestSnapshotInChunks(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, size := range []int{1, 2, 3, 17, 500} {
		f := newFixture(t)
		f.commit(1, randomWrites(r, size, 1<<30, 0))
		size = len(f.models[1])
		root := f.roots[1]
		for _, n := range []int{1, 2, 7, 64, 1000} {
			v := statetree.NewRangeVerifier(root)
			var from chain.Hash
			got := 0
			for !v.Complete() {
				kvs, p := chunk(t, f.tree, 1, from, n)
				if _, err := statetree.VerifyRange(root, kvs, p); err != nil {
					t.Fatalf("size %d, chunk %d at %d: alone: %v", size, n, got, err)
				}
				ls, err := v.Verify(kvs, p)
				if err != nil {
					t.Fatalf("size %d, chunk %d at %d: %v", size, n, got, err)
				}
				got += len(ls)
				from = next(ls[len(ls)-1].KeyHash)
			}
			if got != size {
				t.Fatalf("size %d, chunk %d: complete after %d leaves", size, n, got)
			}
		}
	}
}

func TestRangeRejects(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	f := newFixture(t)
	f.commit(1, randomWrites(r, 300, 1<<30, 0))
	root := f.roots[1]
	kvs, p := chunk(t, f.tree, 1, chain.Hash{}, 40)
	if _, err := statetree.VerifyRange(root, kvs, p); err != nil {
		t.Fatal(err)
	}
	cp := func(kvs []statetree.KV) []statetree.KV { return append([]statetree.KV(nil), kvs...) }
	tampered := cp(kvs)
	tampered[5].Value = []byte("forged")
	missing := append(cp(kvs[:10]), kvs[11:]...)
	swapped := cp(kvs)
	swapped[3], swapped[4] = swapped[4], swapped[3]
	dup := append(cp(kvs[:10]), kvs[9:]...)
	lastOff := cp(kvs[:len(kvs)-1]) // proof still claims the old last leaf
	wrongRoot := root
	wrongRoot[0] ^= 1
	badRight := *p
	badRight.Right = append([]chain.Hash(nil), p.Right...)
	badRight.Right[0][0] ^= 1
	hideRest := *p
	hideRest.Right = make([]chain.Hash, len(p.Right)) // claims nothing follows
	shortRight := *p
	shortRight.Right = p.Right[1:]
	deep := *p
	deep.FirstDepth = statetree.MaxDepth + 1
	for _, tc := range []struct {
		name    string
		root    chain.Hash
		kvs     []statetree.KV
		p       *statetree.RangeProof
		wantErr error
	}{
		{"tampered value", root, tampered, p, statetree.ErrWrongRoot},
		{"leaf left out", root, missing, p, statetree.ErrWrongRoot},
		{"last leaf left out", root, lastOff, p, statetree.ErrMalformedProof},
		{"out of order", root, swapped, p, statetree.ErrOutOfOrder},
		{"duplicate leaf", root, dup, p, statetree.ErrOutOfOrder},
		{"wrong root", wrongRoot, kvs, p, statetree.ErrWrongRoot},
		{"tampered right sibling", root, kvs, &badRight, statetree.ErrWrongRoot},
		{"right part hidden", root, kvs, &hideRest, statetree.ErrWrongRoot},
		{"right sibling dropped", root, kvs, &shortRight, statetree.ErrMalformedProof},
		{"depth too large", root, kvs, &deep, statetree.ErrMalformedProof},
		{"no leaves", root, nil, p, statetree.ErrEmptyRange},
		{"no proof", root, kvs, nil, statetree.ErrMalformedProof},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := statetree.VerifyRange(tc.root, tc.kvs, tc.p)
			var ve *chain.VerifyError
			if !errors.Is(err, tc.wantErr) || !errors.As(err, &ve) {
				t.Fatalf("got %v, want a *chain.VerifyError for %v", err, tc.wantErr)
			}
		})
	}
}

func TestRangeVerifierRejects(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	f := newFixture(t)
	f.commit(1, randomWrites(r, 300, 1<<30, 0))
	root := f.roots[1]
	c1, p1 := chunk(t, f.tree, 1, chain.Hash{}, 50)
	last1 := statetree.KeyHash(c1[len(c1)-1].Key)
	c2, p2 := chunk(t, f.tree, 1, next(last1), 50)
	// A chunk that skips the first leaf after chunk 1: a gap.
	c3, p3 := chunk(t, f.tree, 1, next(statetree.KeyHash(c2[0].Key)), 50)
	// Chunk 1 again, overlapping itself.
	for _, tc := range []struct {
		name    string
		kvs     []statetree.KV
		p       *statetree.RangeProof
		wantErr error
	}{
		{"gap", c3, p3, statetree.ErrGap},
		{"overlap", c1, p1, statetree.ErrOutOfOrder},
		{"left part of another chunk", c2, p3, statetree.ErrGap},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := statetree.NewRangeVerifier(root)
			if _, err := v.Verify(c1, p1); err != nil {
				t.Fatal(err)
			}
			_, err := v.Verify(tc.kvs, tc.p)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got %v, want %v", err, tc.wantErr)
			}
			// The failure left the verifier as it was: the right chunk passes.
			if _, err := v.Verify(c2, p2); err != nil {
				t.Fatalf("next chunk after a rejected one: %v", err)
			}
		})
	}
	// A first chunk that does not start at the first leaf.
	v := statetree.NewRangeVerifier(root)
	if _, err := v.Verify(c2, p2); !errors.Is(err, statetree.ErrGap) {
		t.Fatalf("first chunk not at the start: %v", err)
	}
}

func TestRangeProofEncodingRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	f := newFixture(t)
	f.commit(1, randomWrites(r, 300, 1<<30, 0))
	kvs, p := chunk(t, f.tree, 1, chain.Hash{0x40}, 30)
	enc, _ := p.MarshalBinary()
	var q statetree.RangeProof
	if err := q.UnmarshalBinary(enc); err != nil {
		t.Fatal(err)
	}
	if _, err := statetree.VerifyRange(f.roots[1], kvs, &q); err != nil {
		t.Fatal(err)
	}
	if again, _ := q.MarshalBinary(); string(again) != string(enc) {
		t.Fatal("range proof changed in a round trip")
	}
}
