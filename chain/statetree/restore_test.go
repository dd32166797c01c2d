package statetree_test

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/statetree"
)

// TestRestoreFromChunks syncs snapshots of trees of several sizes chunk by
// chunk into a Restorer, then checks that the
// restored store serves every version-7 proof and takes further updates.
func TestRestoreFromChunks(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	for _, size := range []int{0, 1, 2, 5, 300} {
		src := newFixture(t)
		src.commit(7, randomWrites(r, size, 1<<30, 0))
		root, m := src.roots[7], src.models[7]
		dst := statetree.NewMemStore()
		rs := statetree.NewRestorer(7, root)
		var from chain.Hash
		for !rs.Complete() {
			kvs, p := chunk(t, src.tree, 7, from, 1+r.IntN(40))
			ls, err := rs.AddChunk(kvs, p)
			if err != nil {
				t.Fatal(err)
			}
			dst.Apply(&statetree.Batch{Nodes: rs.Take()})
			from = next(ls[len(ls)-1].KeyHash)
		}
		got, nodes := rs.Finish()
		dst.Apply(&statetree.Batch{Nodes: nodes})
		if got != root {
			t.Fatalf("size %d: restored root %s, want %s", size, got.Short(), root.Short())
		}
		if n, want := dst.Len(), reachable(t, dst, 7); n != want {
			t.Fatalf("size %d: %d nodes restored, %d reachable", size, n, want)
		}
		tr := statetree.New(dst)
		checkVersion(t, tr, 7, root, m, r)
		// The restored tree goes on like the original.
		ws := randomWrites(r, 30, 1<<30, 0.2)
		b1, err := tr.Update(7, 8, ws)
		if err != nil {
			t.Fatal(err)
		}
		b2, err := src.tree.Update(7, 8, ws)
		if err != nil {
			t.Fatal(err)
		}
		if b1.Root != b2.Root {
			t.Fatalf("size %d: update of the restored tree differs", size)
		}
	}
}

// TestRestorerRejects: the chunks a RangeVerifier rejects, a Restorer
// rejects with the same reasons, and stays as it was.
func TestRestorerRejects(t *testing.T) {
	r := rand.New(rand.NewPCG(27, 28))
	f := newFixture(t)
	f.commit(1, randomWrites(r, 300, 1<<30, 0))
	root := f.roots[1]
	c1, p1 := chunk(t, f.tree, 1, chain.Hash{}, 50)
	c2, p2 := chunk(t, f.tree, 1, next(statetree.KeyHash(c1[len(c1)-1].Key)), 50)
	c3, p3 := chunk(t, f.tree, 1, next(statetree.KeyHash(c2[0].Key)), 50)
	tampered := append([]statetree.KV(nil), c2...)
	tampered[7].Value = []byte("forged")
	missing := append(append([]statetree.KV(nil), c2[:7]...), c2[8:]...)
	swapped := append([]statetree.KV(nil), c2...)
	swapped[1], swapped[2] = swapped[2], swapped[1]
	hide := *p2
	hide.Right = make([]chain.Hash, len(p2.Right))
	for _, tc := range []struct {
		name    string
		kvs     []statetree.KV
		p       *statetree.RangeProof
		wantErr error
	}{
		{"gap", c3, p3, statetree.ErrGap},
		{"overlap", c1, p1, statetree.ErrOutOfOrder},
		{"tampered value", tampered, p2, statetree.ErrWrongRoot},
		{"leaf left out", missing, p2, statetree.ErrWrongRoot},
		{"out of order", swapped, p2, statetree.ErrOutOfOrder},
		{"rest hidden", c2, &hide, statetree.ErrWrongRoot},
		{"no leaves", nil, p2, statetree.ErrEmptyRange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := statetree.NewRestorer(1, root)
			if _, err := rs.AddChunk(c1, p1); err != nil {
				t.Fatal(err)
			}
			n := len(rs.Take())
			_, err := rs.AddChunk(tc.kvs, tc.p)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got %v, want %v", err, tc.wantErr)
			}
			if len(rs.Take()) != 0 {
				t.Fatal("a rejected chunk left nodes")
			}
			if _, err := rs.AddChunk(c2, p2); err != nil {
				t.Fatalf("next chunk after a rejected one: %v", err)
			}
			_ = n
		})
	}
}

// TestRestorerResume: a restore killed after any chunk resumes from the
// position stored with that chunk and ends with the same tree.
func TestRestorerResume(t *testing.T) {
	r := rand.New(rand.NewPCG(29, 30))
	src := newFixture(t)
	src.commit(3, randomWrites(r, 200, 1<<30, 0))
	root := src.roots[3]
	var chunks [][]statetree.KV
	var proofs []*statetree.RangeProof
	var from chain.Hash
	for {
		kvs, p := chunk(t, src.tree, 3, from, 1+r.IntN(30))
		chunks, proofs = append(chunks, kvs), append(proofs, p)
		from = next(statetree.KeyHash(kvs[len(kvs)-1].Key))
		if _, err := statetree.VerifyRange(root, kvs, p); err != nil {
			t.Fatal(err)
		}
		if rest, _ := src.tree.Leaves(3, from, 1); len(rest) == 0 {
			break
		}
	}
	for kill := range len(chunks) {
		dst := statetree.NewMemStore()
		rs := statetree.NewRestorer(3, root)
		var saved []byte
		for i := range chunks {
			if i == kill+1 {
				var err error
				if rs, err = statetree.ResumeRestorer(saved); err != nil {
					t.Fatalf("resume after chunk %d: %v", kill, err)
				}
			}
			if _, err := rs.AddChunk(chunks[i], proofs[i]); err != nil {
				t.Fatalf("kill after %d, chunk %d: %v", kill, i, err)
			}
			dst.Apply(&statetree.Batch{Nodes: rs.Take()})
			saved, _ = rs.MarshalBinary()
		}
		if !rs.Complete() {
			t.Fatal("not complete after the last chunk")
		}
		got, nodes := rs.Finish()
		dst.Apply(&statetree.Batch{Nodes: nodes})
		if got != root || dst.Len() != reachable(t, dst, 3) {
			t.Fatalf("kill after %d: root %s, %d nodes", kill, got.Short(), dst.Len())
		}
	}
}
