package statetree_test

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/statetree"
)

// fuzzTree is a small fixed tree for the fuzz targets to verify against.
func fuzzTree(f *testing.F) *fixture {
	fx := newFixture(f)
	fx.commit(1, randomWrites(rand.New(rand.NewPCG(23, 24)), 64, 1<<30, 0))
	return fx
}

func FuzzParseNode(f *testing.F) {
	fx := fuzzTree(f)
	for _, e := range fx.store.Nodes(1) {
		f.Add(e.AppendBinary(nil))
	}
	f.Add([]byte{0})
	f.Add([]byte{2, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := statetree.ParseNode(b)
		if err != nil {
			return
		}
		if !bytes.Equal(n.AppendBinary(nil), b) {
			t.Fatal("a decoded node encodes differently")
		}
		_ = n.Hash()
	})
}

func FuzzParseNodeKey(f *testing.F) {
	f.Add(statetree.NodeKey{Version: 7, Depth: 13, Path: chain.Hash{0xab, 0xc0}}.AppendBinary(nil))
	f.Add(statetree.NodeKey{Version: 1, Depth: statetree.MaxDepth, Path: chain.Hash{1}}.AppendBinary(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := statetree.ParseNodeKey(b)
		if err != nil {
			return
		}
		if !bytes.Equal(k.AppendBinary(nil), b) {
			t.Fatal("a decoded node key encodes differently")
		}
	})
}

func FuzzProof(f *testing.F) {
	fx := fuzzTree(f)
	root := fx.roots[1]
	for i := range 8 {
		_, p, err := fx.tree.Get(1, statetree.KeyHash(key(i)))
		if err != nil {
			f.Fatal(err)
		}
		b, _ := p.MarshalBinary()
		f.Add(b, key(i))
	}
	f.Fuzz(func(t *testing.T, b, k []byte) {
		var p statetree.Proof
		if err := p.UnmarshalBinary(b); err != nil {
			return
		}
		if again, _ := p.MarshalBinary(); !bytes.Equal(again, b) {
			t.Fatal("a decoded proof encodes differently")
		}
		kh := statetree.KeyHash(k)
		errIn := statetree.VerifyInclusion(root, kh, []byte("v"), &p)
		errOut := statetree.VerifyNonInclusion(root, kh, &p)
		if errIn == nil && errOut == nil {
			t.Fatal("a proof of both inclusion and non-inclusion")
		}
	})
}

func FuzzRangeProof(f *testing.F) {
	fx := fuzzTree(f)
	root := fx.roots[1]
	ls, err := fx.tree.Leaves(1, chain.Hash{}, 3)
	if err != nil {
		f.Fatal(err)
	}
	p, err := fx.tree.RangeProof(1, ls[0].KeyHash, ls[2].KeyHash)
	if err != nil {
		f.Fatal(err)
	}
	b, _ := p.MarshalBinary()
	f.Add(b, uint8(3))
	f.Add(b, uint8(2))
	f.Fuzz(func(t *testing.T, b []byte, n uint8) {
		var p statetree.RangeProof
		if err := p.UnmarshalBinary(b); err != nil {
			return
		}
		if again, _ := p.MarshalBinary(); !bytes.Equal(again, b) {
			t.Fatal("a decoded range proof encodes differently")
		}
		// The leaves, the middle one's value changed if n says so.
		kvs := make([]statetree.KV, 0, 3)
		for _, l := range ls[:1+int(n)%3] {
			kvs = append(kvs, statetree.KV{Key: l.Key, Value: l.Value})
		}
		forged := n >= 128 && len(kvs) >= 2
		if forged {
			kvs[1].Value = []byte("forged")
		}
		_, err1 := statetree.VerifyRange(root, kvs, &p)
		_, err2 := statetree.NewRangeVerifier(root).Verify(kvs, &p)
		if forged && (err1 == nil || err2 == nil) {
			t.Fatal("a forged value verified")
		}
		if err2 == nil && err1 != nil {
			t.Fatal("a first chunk verified in a snapshot but not alone")
		}
	})
}

func FuzzResumeRestorer(f *testing.F) {
	fx := fuzzTree(f)
	ls, err := fx.tree.Leaves(1, chain.Hash{}, 10)
	if err != nil {
		f.Fatal(err)
	}
	p, err := fx.tree.RangeProof(1, ls[0].KeyHash, ls[9].KeyHash)
	if err != nil {
		f.Fatal(err)
	}
	kvs := make([]statetree.KV, len(ls))
	for i, l := range ls {
		kvs[i] = statetree.KV{Key: l.Key, Value: l.Value}
	}
	rs := statetree.NewRestorer(1, fx.roots[1])
	b, _ := rs.MarshalBinary()
	f.Add(b)
	if _, err := rs.AddChunk(kvs, p); err != nil {
		f.Fatal(err)
	}
	b, _ = rs.MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := statetree.ResumeRestorer(b)
		if err != nil {
			return
		}
		if again, _ := rs.MarshalBinary(); !bytes.Equal(again, b) {
			t.Fatal("a decoded restorer state encodes differently")
		}
		// Whatever the state, a chunk must not crash the restorer.
		_, _ = rs.AddChunk(kvs, p)
	})
}
