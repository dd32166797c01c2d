package ledger_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/ledger"
)

// rejectCase is a chunk mutation and the error it must cause.
type rejectCase struct {
	name    string
	mutate  func(c *ledger.Chunk)
	target  *chain.LedgerInfoWithSignatures // nil: the valid target
	wantErr error
}

// rejectCases returns the mutations of a chunk c of at least 3 transactions
// whose Left and Right are not empty.
func rejectCases(c *ledger.Chunk, other *chain.LedgerInfoWithSignatures) []rejectCase {
	var cases []rejectCase
	add := func(name string, wantErr error, f func(c *ledger.Chunk)) {
		cases = append(cases, rejectCase{name: name, mutate: f, wantErr: wantErr})
	}
	for i, tx := range c.Txs {
		for _, pos := range []int{0, 1, len(tx) / 2, len(tx) - 1} {
			add(fmt.Sprintf("tx %d byte %d flipped", i, pos), ledger.ErrChunkProof, func(c *ledger.Chunk) { c.Txs[i][pos] ^= 0x80 })
		}
		add(fmt.Sprintf("tx %d missing", i), ledger.ErrChunkProof, func(c *ledger.Chunk) { c.Txs = slices.Delete(c.Txs, i, i+1) })
		add(fmt.Sprintf("tx %d longer", i), ledger.ErrChunkProof, func(c *ledger.Chunk) { c.Txs[i] = append(c.Txs[i], 0) })
		add(fmt.Sprintf("tx %d shorter", i), ledger.ErrChunkProof, func(c *ledger.Chunk) { c.Txs[i] = c.Txs[i][:len(c.Txs[i])-1] })
	}
	for i := range c.Left {
		add(fmt.Sprintf("left %d bit flipped", i), ledger.ErrChunkProof, func(c *ledger.Chunk) { c.Left[i][31] ^= 1 })
	}
	for i := range c.Right {
		add(fmt.Sprintf("right %d bit flipped", i), ledger.ErrChunkProof, func(c *ledger.Chunk) { c.Right[i][0] ^= 0x10 })
	}
	add("txs swapped", ledger.ErrChunkProof, func(c *ledger.Chunk) { c.Txs[0], c.Txs[1] = c.Txs[1], c.Txs[0] })
	add("txs reversed", ledger.ErrChunkProof, func(c *ledger.Chunk) { slices.Reverse(c.Txs) })
	add("extra tx at the end", ledger.ErrChunkProof, func(c *ledger.Chunk) { c.Txs = append(c.Txs, []byte("extra")) })
	add("extra tx at the start", ledger.ErrChunkProof, func(c *ledger.Chunk) { c.Txs = slices.Insert(c.Txs, 0, []byte("extra")) })
	add("tx duplicated", ledger.ErrChunkProof, func(c *ledger.Chunk) { c.Txs = slices.Insert(c.Txs, 1, c.Txs[1]) })
	add("start one later", ledger.ErrChunkStart, func(c *ledger.Chunk) { c.StartVersion++ })
	add("start one earlier", ledger.ErrChunkStart, func(c *ledger.Chunk) { c.StartVersion-- })
	add("start at 0", ledger.ErrChunkStart, func(c *ledger.Chunk) { c.StartVersion = 0 })
	add("target one more", ledger.ErrChunkProof, func(c *ledger.Chunk) { c.Target++ })
	add("target one less", ledger.ErrChunkProof, func(c *ledger.Chunk) { c.Target-- })
	add("left too short", ledger.ErrChunkProof, func(c *ledger.Chunk) { c.Left = c.Left[:len(c.Left)-1] })
	add("left too long", ledger.ErrChunkProof, func(c *ledger.Chunk) { c.Left = append(c.Left, c.Left[0]) })
	add("left empty", ledger.ErrChunkProof, func(c *ledger.Chunk) { c.Left = nil })
	add("right too short", ledger.ErrChunkProof, func(c *ledger.Chunk) { c.Right = c.Right[1:] })
	add("right too long", ledger.ErrChunkProof, func(c *ledger.Chunk) { c.Right = append(c.Right, c.Right[0]) })
	add("right empty", ledger.ErrChunkProof, func(c *ledger.Chunk) { c.Right = nil })
	add("left and right swapped", ledger.ErrChunkProof, func(c *ledger.Chunk) { c.Left, c.Right = c.Right, c.Left })
	add("no tx", ledger.ErrChunkLimits, func(c *ledger.Chunk) { c.Txs = nil })
	add("empty tx", ledger.ErrChunkLimits, func(c *ledger.Chunk) { c.Txs[1] = []byte{} })
	add("tx over MaxTxSize", ledger.ErrChunkLimits, func(c *ledger.Chunk) { c.Txs[1] = make([]byte, chain.MaxTxSize+1) })
	add("too many txs", ledger.ErrChunkLimits, func(c *ledger.Chunk) {
		for len(c.Txs) <= ledger.MaxChunkTxs {
			c.Txs = append(c.Txs, []byte{1})
		}
	})
	add("too many bytes", ledger.ErrChunkLimits, func(c *ledger.Chunk) {
		for i := 0; i <= ledger.MaxChunkBytes/chain.MaxTxSize; i++ {
			c.Txs = append(c.Txs, make([]byte, chain.MaxTxSize))
		}
	})
	add("runs past the target", ledger.ErrChunkLimits, func(c *ledger.Chunk) {
		for c.StartVersion+uint64(len(c.Txs)) <= c.Target {
			c.Txs = append(c.Txs, []byte{1})
		}
	})
	cases = append(cases, rejectCase{name: "another chain's ledger info", mutate: func(*ledger.Chunk) {}, target: other, wantErr: ledger.ErrChunkProof})
	return cases
}

// TestApplyChunkRejects applies every mutation of a valid chunk to a client
// in the middle of a sync: each is rejected with its typed error and leaves
// the client unchanged; the valid chunk then applies.
func TestApplyChunkRejects(t *testing.T) {
	srv := newSized(t, 21, []int{13, 17, 9}, 20)
	// Another chain with a ledger info of the same version.
	other := newSized(t, 22, []int{39}, 20)
	target := srv.lis[2]
	if other.lis[0].LedgerInfo.CommitInfo.Version != target.LedgerInfo.CommitInfo.Version {
		t.Fatal("the other chain's ledger info has another version")
	}
	client, st := newLedger(t, srv.b.V.Genesis)
	first, err := srv.ledger.GetChunk(0, 39, 11)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.ApplyChunk(first, target); err != nil {
		t.Fatal(err)
	}
	valid, err := srv.ledger.GetChunk(11, 39, 6) // [11, 17): Left of 2, Right of 3 hashes
	if err != nil {
		t.Fatal(err)
	}
	if len(valid.Left) == 0 || len(valid.Right) == 0 {
		t.Fatalf("chunk with %d left and %d right hashes", len(valid.Left), len(valid.Right))
	}
	version, frontier := client.Frontier()
	if err := ledger.VerifyChunk(valid, frontier, version, target.LedgerInfo.CommitInfo); err != nil {
		t.Fatalf("VerifyChunk(valid) = %v", err)
	}
	if err := ledger.VerifyChunk(valid, valid.Left, valid.StartVersion, target.LedgerInfo.CommitInfo); err != nil {
		t.Fatalf("VerifyChunk(valid, own left) = %v", err)
	}
	before := snap(t, client, st)
	for _, tc := range rejectCases(valid, other.lis[0]) {
		t.Run(tc.name, func(t *testing.T) {
			c := cloneChunk(valid)
			tc.mutate(c)
			tgt := target
			if tc.target != nil {
				tgt = tc.target
			}
			err := client.ApplyChunk(c, tgt)
			var ve *chain.VerifyError
			if !errors.As(err, &ve) || !errors.Is(err, tc.wantErr) {
				t.Fatalf("ApplyChunk = %v, want a *chain.VerifyError with %v", err, tc.wantErr)
			}
			if !snap(t, client, st).equal(before) {
				t.Fatal("a rejected chunk changed the ledger")
			}
			// The pure check agrees, and the decoder rejects what it can see.
			if err := ledger.VerifyChunk(c, frontier, version, tgt.LedgerInfo.CommitInfo); !errors.Is(err, tc.wantErr) {
				t.Fatalf("VerifyChunk = %v, want %v", err, tc.wantErr)
			}
			// Checked against its own Left, as a pipelining syncer does, it
			// fails too, as the peer's fault.
			if err := ledger.VerifyChunk(c, c.Left, c.StartVersion, tgt.LedgerInfo.CommitInfo); !errors.As(err, &ve) {
				t.Fatalf("VerifyChunk(own left) = %v, want a *chain.VerifyError", err)
			}
		})
	}
	if err := client.ApplyChunk(valid, target); err != nil {
		t.Fatalf("ApplyChunk(valid) after the rejections: %v", err)
	}
	syncTo(t, srv.ledger, client, target, 100)
	if client.Root() != srv.ledger.Root() {
		t.Fatal("client root differs from the server's")
	}
}

// TestApplyChunkStaleTarget rejects a chunk against a ledger info the client
// is already past.
func TestApplyChunkStaleTarget(t *testing.T) {
	srv := newSized(t, 23, []int{5, 5}, 20)
	client, _ := newLedger(t, srv.b.V.Genesis)
	syncTo(t, srv.ledger, client, srv.lis[1], 4)
	c, err := srv.ledger.GetChunk(0, 5, 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.ApplyChunk(c, srv.lis[0]); !errors.Is(err, ledger.ErrChunkStart) || !chain.IsSoft(err) {
		t.Fatalf("ApplyChunk(stale) = %v, want soft ErrChunkStart", err)
	}
}

func TestDecodeChunkRejects(t *testing.T) {
	srv := newSized(t, 24, []int{20}, 20)
	valid, err := srv.ledger.GetChunk(5, 20, 6)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		mutate  func(c *ledger.Chunk)
		wantErr error
	}{
		{"left too short", func(c *ledger.Chunk) { c.Left = c.Left[1:] }, ledger.ErrChunkProof},
		{"right too long", func(c *ledger.Chunk) { c.Right = append(c.Right, c.Right[0]) }, ledger.ErrChunkProof},
		{"no tx", func(c *ledger.Chunk) { c.Txs = nil }, ledger.ErrChunkLimits},
		{"empty tx", func(c *ledger.Chunk) { c.Txs[0] = nil }, ledger.ErrChunkLimits},
		{"past target", func(c *ledger.Chunk) { c.Target = 10 }, ledger.ErrChunkLimits},
		{"start overflows", func(c *ledger.Chunk) { c.StartVersion = 1<<64 - 2 }, ledger.ErrChunkLimits},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cloneChunk(valid)
			tc.mutate(c)
			enc, err := chain.Encode(c)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ledger.DecodeChunk(enc); !errors.Is(err, tc.wantErr) {
				t.Fatalf("DecodeChunk = %v, want %v", err, tc.wantErr)
			}
		})
	}
	enc, err := chain.Encode(valid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.DecodeChunk(enc[:len(enc)-1]); !errors.Is(err, chain.ErrDecode) {
		t.Fatalf("DecodeChunk(truncated) = %v, want chain.ErrDecode", err)
	}
	if _, err := ledger.DecodeChunk(make([]byte, ledger.MaxChunkEncoded+1)); !errors.Is(err, chain.ErrDecode) {
		t.Fatalf("DecodeChunk(oversized) = %v, want chain.ErrDecode", err)
	}
}

// TestMaxChunkEncoded checks that the largest chunk within the limits
// encodes within MaxChunkEncoded.
func TestMaxChunkEncoded(t *testing.T) {
	c := &ledger.Chunk{StartVersion: 1<<63 - 1, Target: 1<<64 - 1}
	per := ledger.MaxChunkBytes / ledger.MaxChunkTxs
	for range ledger.MaxChunkTxs {
		c.Txs = append(c.Txs, make([]byte, per))
	}
	c.Left = make([]chain.Hash, 64)
	c.Right = make([]chain.Hash, 128)
	enc, err := chain.Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(enc) > ledger.MaxChunkEncoded {
		t.Fatalf("largest chunk encodes to %d bytes, MaxChunkEncoded %d", len(enc), ledger.MaxChunkEncoded)
	}
	big := &ledger.Chunk{Txs: make([][]byte, ledger.MaxChunkBytes/chain.MaxTxSize)}
	for i := range big.Txs {
		big.Txs[i] = make([]byte, chain.MaxTxSize)
	}
	big.Left, big.Right = c.Left, c.Right
	if enc, err = chain.Encode(big); err != nil || len(enc) > ledger.MaxChunkEncoded {
		t.Fatalf("chunk of maximal transactions encodes to %d bytes, %v", len(enc), err)
	}
}
