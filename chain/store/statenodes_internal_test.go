package store

import (
	"bytes"
	"testing"

	"github.com/p2pnode/p2pnode/chain/statetree"
)

// TestNodeRun encodes the nodes of a tree update as a run and finds each
// of them, and no other position, by binary search.
func TestNodeRun(t *testing.T) {
	var ws []statetree.Write
	for i := range 300 {
		k := []byte{'k', byte(i), byte(i >> 8)}
		ws = append(ws, statetree.Write{KeyHash: statetree.KeyHash(k), Key: k, Value: bytes.Repeat([]byte{byte(i)}, i%200)})
	}
	slicesSortWrites(ws)
	b, err := statetree.New(statetree.NewMemStore()).Update(statetree.Empty, 7, ws)
	if err != nil {
		t.Fatal(err)
	}
	run := encodeRun(b.Nodes)
	for _, e := range b.Nodes {
		if got := nodeSize(e.Node); got != len(e.Node.AppendBinary(nil)) {
			t.Fatalf("nodeSize = %d, encoding has %d bytes", got, len(e.Node.AppendBinary(nil)))
		}
		raw, err := findNode(run, e.Key)
		if err != nil || !bytes.Equal(raw, e.Node.AppendBinary(nil)) {
			t.Fatalf("findNode(%d/%x) = %x, %v", e.Key.Depth, e.Key.Path[:4], raw, err)
		}
	}
	if raw, err := findNode(run, statetree.NodeKey{Version: 7, Depth: 255}); raw != nil || err != nil {
		t.Fatalf("findNode(absent) = %x, %v", raw, err)
	}
	if _, err := findNode(run[:len(run)/2], b.Nodes[len(b.Nodes)-1].Key); err == nil {
		// A cut run fails on some entry, or misses: never a wrong node.
		if raw, _ := findNode(run[:len(run)/2], b.Nodes[len(b.Nodes)-1].Key); raw != nil && !bytes.Equal(raw, b.Nodes[len(b.Nodes)-1].Node.AppendBinary(nil)) {
			t.Fatal("a cut run gave a wrong node")
		}
	}
}

func slicesSortWrites(ws []statetree.Write) {
	for i := 1; i < len(ws); i++ {
		for j := i; j > 0 && bytes.Compare(ws[j-1].KeyHash[:], ws[j].KeyHash[:]) > 0; j-- {
			ws[j-1], ws[j] = ws[j], ws[j-1]
		}
	}
}

// FuzzNodeRun feeds findNode arbitrary runs: a corrupt run is an error or
// a miss, never a panic or a read out of its bounds.
func FuzzNodeRun(f *testing.F) {
	var ws []statetree.Write
	for i := range 20 {
		k := []byte{'f', byte(i)}
		ws = append(ws, statetree.Write{KeyHash: statetree.KeyHash(k), Key: k, Value: []byte{byte(i)}})
	}
	slicesSortWrites(ws)
	b, err := statetree.New(statetree.NewMemStore()).Update(statetree.Empty, 1, ws)
	if err != nil {
		f.Fatal(err)
	}
	run := encodeRun(b.Nodes)
	f.Add(run, uint16(0), []byte{})
	f.Add(run[:len(run)/3], b.Nodes[0].Key.Depth, b.Nodes[0].Key.Path[:])
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 8, 0xff, 0xff}, uint16(3), []byte{0x80})
	f.Fuzz(func(t *testing.T, run []byte, depth uint16, path []byte) {
		k := statetree.NodeKey{Version: 1, Depth: depth % (statetree.MaxDepth + 1)}
		copy(k.Path[:], path)
		if raw, err := findNode(run, k); err == nil && raw != nil && len(raw) > len(run) {
			t.Fatalf("a node of %d bytes from a run of %d", len(raw), len(run))
		}
	})
}
