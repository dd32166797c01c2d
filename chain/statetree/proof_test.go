package statetree_test

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/statetree"
)

func TestProofRejects(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	f := newFixture(t)
	f.commit(1, randomWrites(r, 200, 1000, 0))
	root := f.roots[1]
	var present chain.Hash
	for kh := range f.models[1] {
		present = kh
		break
	}
	value := f.models[1][present].Value
	absent := statetree.KeyHash([]byte("absent"))
	_, pin, err := f.tree.Get(1, present)
	if err != nil {
		t.Fatal(err)
	}
	_, pout, err := f.tree.Get(1, absent)
	if err != nil {
		t.Fatal(err)
	}
	if err := statetree.VerifyInclusion(root, present, value, pin); err != nil {
		t.Fatal(err)
	}
	if err := statetree.VerifyNonInclusion(root, absent, pout); err != nil {
		t.Fatal(err)
	}
	clone := func(p *statetree.Proof) *statetree.Proof {
		c := &statetree.Proof{Siblings: append([]chain.Hash(nil), p.Siblings...)}
		if p.Leaf != nil {
			l := *p.Leaf
			c.Leaf = &l
		}
		return c
	}
	tamperedSibling := clone(pin)
	tamperedSibling.Siblings[0][0] ^= 1
	tamperedLeaf := clone(pin)
	tamperedLeaf.Leaf.ValueHash = statetree.ValueHash([]byte("forged"))
	droppedSibling := clone(pin)
	droppedSibling.Siblings = droppedSibling.Siblings[1:]
	emptyEnd := clone(pout)
	emptyEnd.Siblings[len(emptyEnd.Siblings)-1] = statetree.Placeholder
	offPath := clone(pin)
	offPath.Leaf.KeyHash[0] ^= 0x80
	wrongRoot := root
	wrongRoot[31] ^= 1

	for _, tc := range []struct {
		name      string
		inclusion bool
		root, key chain.Hash
		value     []byte
		proof     *statetree.Proof
		wantErr   error
	}{
		{"tampered value", true, root, present, []byte("forged"), pin, statetree.ErrValueMismatch},
		{"tampered value and leaf", true, root, present, []byte("forged"), tamperedLeaf, statetree.ErrWrongRoot},
		{"tampered sibling", true, root, present, value, tamperedSibling, statetree.ErrWrongRoot},
		{"dropped sibling", true, root, present, value, droppedSibling, statetree.ErrWrongRoot},
		{"wrong root", true, wrongRoot, present, value, pin, statetree.ErrWrongRoot},
		{"missing key", true, root, absent, nil, pout, statetree.ErrKeyMissing},
		{"proof of another key", true, root, absent, value, pin, statetree.ErrMalformedProof},
		{"leaf off the path", true, root, present, value, offPath, statetree.ErrMalformedProof},
		{"nil proof", true, root, present, value, nil, statetree.ErrMalformedProof},
		{"present key", false, root, present, nil, pin, statetree.ErrKeyPresent},
		{"absence, wrong root", false, wrongRoot, absent, nil, pout, statetree.ErrWrongRoot},
		{"absence, empty sibling at the end", false, root, absent, nil, emptyEnd, statetree.ErrMalformedProof},
		{"too many siblings", false, root, absent, nil, &statetree.Proof{Siblings: make([]chain.Hash, statetree.MaxDepth+1)}, statetree.ErrMalformedProof},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.inclusion {
				err = statetree.VerifyInclusion(tc.root, tc.key, tc.value, tc.proof)
			} else {
				err = statetree.VerifyNonInclusion(tc.root, tc.key, tc.proof)
			}
			var ve *chain.VerifyError
			if !errors.Is(err, tc.wantErr) || !errors.As(err, &ve) {
				t.Fatalf("got %v, want a *chain.VerifyError for %v", err, tc.wantErr)
			}
		})
	}
}

func TestProofEncodingRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	f := newFixture(t)
	f.commit(1, randomWrites(r, 100, 1000, 0))
	for i := range 50 {
		kh := statetree.KeyHash(key(i))
		_, p, err := f.tree.Get(1, kh)
		if err != nil {
			t.Fatal(err)
		}
		enc, _ := p.MarshalBinary()
		var q statetree.Proof
		if err := q.UnmarshalBinary(enc); err != nil {
			t.Fatal(err)
		}
		again, _ := q.MarshalBinary()
		if string(again) != string(enc) {
			t.Fatal("proof changed in a round trip")
		}
		if l, _ := f.models[1][kh]; l.Key != nil {
			err = statetree.VerifyInclusion(f.roots[1], kh, l.Value, &q)
		} else {
			err = statetree.VerifyNonInclusion(f.roots[1], kh, &q)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
