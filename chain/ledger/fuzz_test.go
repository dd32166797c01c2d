package ledger_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/ledger"
)

func FuzzDecodeChunk(f *testing.F) {
	srv := newSized(f, 41, []int{3, 9}, 12)
	for _, r := range [][3]uint64{{0, 1, 1}, {0, 12, 12}, {2, 12, 3}, {5, 9, 100}, {11, 12, 1}} {
		c, err := srv.ledger.GetChunk(r[0], r[1], r[2])
		if err != nil {
			f.Fatal(err)
		}
		enc, err := chain.Encode(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	f.Add([]byte{})
	f.Add([]byte{0x85, 0x00, 0x01, 0x81, 0x41, 0x00, 0x80, 0x80})
	f.Add([]byte{0x85, 0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x81, 0x41, 0x00, 0x80, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ledger.DecodeChunk(data)
		if err != nil {
			return
		}
		enc, err := chain.Encode(c)
		if err != nil {
			t.Fatalf("decoded chunk does not encode: %v", err)
		}
		c2, err := ledger.DecodeChunk(enc)
		if err != nil {
			t.Fatalf("re-encoded chunk does not decode: %v", err)
		}
		enc2, err := chain.Encode(c2)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding does not round-trip: %x, then %x (%v)", enc, enc2, err)
		}
	})
}

// mutateChunk applies the mutations that ops describe, three bytes each, to c.
func mutateChunk(c *ledger.Chunk, ops []byte) {
	hash := func(hs []chain.Hash, a, b byte) {
		if len(hs) > 0 {
			hs[int(a)%len(hs)][b%chain.HashSize] ^= 1 << (b % 8)
		}
	}
	for ; len(ops) >= 3; ops = ops[3:] {
		op, a, b := ops[0], ops[1], ops[2]
		n := len(c.Txs)
		switch op % 13 {
		case 0:
			if n > 0 && len(c.Txs[int(a)%n]) > 0 {
				tx := c.Txs[int(a)%n]
				tx[int(b)%len(tx)] ^= 1 << (a % 8)
			}
		case 1:
			hash(c.Left, a, b)
		case 2:
			hash(c.Right, a, b)
		case 3:
			c.StartVersion += uint64(int64(int8(a)))
		case 4:
			c.Target += uint64(int64(int8(a)))
		case 5:
			if n > 0 {
				c.Txs = slices.Delete(c.Txs, int(a)%n, int(a)%n+1)
			}
		case 6:
			c.Txs = slices.Insert(c.Txs, int(a)%(n+1), bytes.Repeat([]byte{b}, int(a)))
		case 7:
			if n > 0 {
				i, j := int(a)%n, int(b)%n
				c.Txs[i], c.Txs[j] = c.Txs[j], c.Txs[i]
			}
		case 8:
			c.Left = c.Left[:int(a)%(len(c.Left)+1)]
		case 9:
			c.Right = c.Right[:int(a)%(len(c.Right)+1)]
		case 10:
			if a%2 == 0 {
				c.Left = append(c.Left, chain.Hash{b})
			} else {
				c.Right = append(c.Right, chain.Hash{b})
			}
		case 11:
			if n > 0 {
				tx := c.Txs[int(a)%n]
				c.Txs[int(a)%n] = tx[:int(b)%(len(tx)+1)]
			}
		case 12:
			if n > 0 {
				c.Txs[int(a)%n] = append(c.Txs[int(a)%n], b)
			}
		}
	}
}

// FuzzApplyChunk applies mutations of valid chunks to a client in the middle
// of a sync: it never panics, and a chunk it accepts extends the client with
// exactly the server's transactions.
func FuzzApplyChunk(f *testing.F) {
	srv := newSized(f, 42, []int{7, 12, 6}, 20)
	target := srv.lis[2]
	tv := target.LedgerInfo.CommitInfo.Version
	const start = 5
	prefix, err := srv.ledger.GetChunk(0, tv, start)
	if err != nil {
		f.Fatal(err)
	}
	roots := make([]chain.Hash, tv+1) // roots[v]: the server's root at version v
	acc := chain.NewAccumulator()
	for v := range roots {
		roots[v] = acc.Root()
		if v < len(srv.txs) {
			acc.Append(srv.txs[v])
		}
	}
	f.Add(uint8(20), []byte{})
	f.Add(uint8(3), []byte{})
	f.Add(uint8(1), []byte{0, 0, 3})
	f.Add(uint8(7), []byte{1, 0, 5, 2, 1, 1})
	f.Add(uint8(20), []byte{3, 1, 0, 4, 0xff, 0})
	f.Add(uint8(4), []byte{5, 2, 0, 6, 2, 9, 7, 0, 1})
	f.Add(uint8(9), []byte{8, 0, 0, 9, 1, 0, 10, 1, 3, 11, 0, 4, 12, 1, 1})
	f.Fuzz(func(t *testing.T, max uint8, ops []byte) {
		valid, err := srv.ledger.GetChunk(start, tv, uint64(max))
		if err != nil {
			return // max 0
		}
		c := cloneChunk(valid)
		mutateChunk(c, ops)
		client, st := newLedger(t, srv.b.V.Genesis)
		if err := client.ApplyChunk(prefix, target); err != nil {
			t.Fatal(err)
		}
		before := snap(t, client, st)
		if err := client.ApplyChunk(c, target); err != nil {
			if !snap(t, client, st).equal(before) {
				t.Fatalf("rejected chunk (%v) changed the ledger", err)
			}
			return
		}
		end := c.StartVersion + uint64(len(c.Txs))
		if client.Version() != end || end > tv || client.Root() != roots[end] {
			t.Fatalf("accepted chunk [%d, %d): client at version %d root %s", c.StartVersion, end, client.Version(), client.Root().Short())
		}
		for i, tx := range c.Txs {
			if !bytes.Equal(tx, srv.txs[start+i]) {
				t.Fatalf("accepted transaction %d differs from the server's", start+i)
			}
		}
		if end == tv && (client.Root() != target.LedgerInfo.CommitInfo.ExecutedStateID || client.Committed() != target.LedgerInfo.CommitInfo) {
			t.Fatal("chunk reached the target but the client did not commit it")
		}
	})
}
