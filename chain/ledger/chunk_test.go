package ledger_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/ledger"
)

// syncTo state-syncs client from server up to target with chunks of at most
// max transactions, each sent through the wire encoding, and returns the
// number of chunks.
func syncTo(t *testing.T, server, client *ledger.Ledger, target *chain.LedgerInfoWithSignatures, max uint64) int {
	t.Helper()
	tv := target.LedgerInfo.CommitInfo.Version
	n := 0
	for client.Version() < tv {
		c, err := server.GetChunk(client.Version(), tv, max)
		if err != nil {
			t.Fatalf("GetChunk(%d, %d, %d): %v", client.Version(), tv, max, err)
		}
		if want := min(max, tv-client.Version()); uint64(len(c.Txs)) != want {
			t.Fatalf("GetChunk(%d, %d, %d) has %d transactions, want %d", client.Version(), tv, max, len(c.Txs), want)
		}
		enc, err := chain.Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		d, err := ledger.DecodeChunk(enc)
		if err != nil {
			t.Fatalf("DecodeChunk: %v", err)
		}
		if err := client.ApplyChunk(d, target); err != nil {
			t.Fatalf("ApplyChunk at %d: %v", client.Version(), err)
		}
		n++
	}
	return n
}

func TestSync(t *testing.T) {
	tests := []struct {
		sizes  []int
		target int // index of the committed block to sync to
	}{
		{[]int{1}, 0},
		{[]int{2}, 0},
		{[]int{3}, 0},
		{[]int{7}, 0},
		{[]int{8}, 0},
		{[]int{9}, 0},
		{[]int{1000}, 0},
		{[]int{3, 4, 0, 2}, 3},
		{[]int{5, 10, 20}, 1}, // target below the server's version
		{[]int{600, 400}, 0},
	}
	for _, tt := range tests {
		for _, max := range []uint64{1, 3, 8, 1000} {
			if tt.sizes[0] == 1000 && max < 8 {
				continue // slow and no different
			}
			t.Run(fmt.Sprintf("%v/%d/max%d", tt.sizes, tt.target, max), func(t *testing.T) {
				srv := newSized(t, 11, tt.sizes, 20)
				target := srv.lis[tt.target]
				tv := target.LedgerInfo.CommitInfo.Version
				client, _ := newLedger(t, srv.b.V.Genesis)
				syncTo(t, srv.ledger, client, target, max)
				if client.Committed() != target.LedgerInfo.CommitInfo || client.Version() != tv ||
					client.Root() != target.LedgerInfo.CommitInfo.ExecutedStateID || client.LedgerInfo() != target {
					t.Fatalf("client after sync: committed %+v version %d", client.Committed(), client.Version())
				}
				want := model(srv.txs[:tv])
				checkState(t, client, want, keysOf(srv.txs))
				if tv == srv.ledger.Version() {
					checkState(t, srv.ledger, want, keysOf(srv.txs))
				}

				// The client serves chunks itself, to a second client.
				client2, _ := newLedger(t, srv.b.V.Genesis)
				syncTo(t, client, client2, target, max+1)
				if client2.Root() != client.Root() || client2.Committed() != client.Committed() {
					t.Fatal("second client differs")
				}

				// The client goes on to the server's latest ledger info, then
				// executes the blocks that follow.
				last := srv.lis[len(srv.lis)-1]
				syncTo(t, srv.ledger, client, last, max)
				if client.Committed() != srv.ledger.Committed() || client.Root() != srv.ledger.Root() {
					t.Fatal("client differs from server after the second sync")
				}
				checkState(t, client, model(srv.txs), keysOf(srv.txs))
				execute(t, client, srv.nodes[len(srv.nodes)-2:]...)
			})
		}
	}
}

// TestSyncResume syncs part of the way, restarts the client from its
// storage, and finishes.
func TestSyncResume(t *testing.T) {
	srv := newSized(t, 12, []int{50}, 20)
	target := srv.lis[0]
	client, st := newLedger(t, srv.b.V.Genesis)
	c, err := srv.ledger.GetChunk(0, 50, 21)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.ApplyChunk(c, target); err != nil {
		t.Fatal(err)
	}
	if client.Version() != 21 || client.Committed() != srv.b.V.Genesis.BlockInfo() {
		t.Fatalf("mid sync: version %d committed %+v", client.Version(), client.Committed())
	}
	// Mid sync the ledger cannot execute blocks on its committed block.
	if _, err := client.Execute(srv.nodes[0].Block); !errors.Is(err, ledger.ErrSyncing) {
		t.Fatalf("Execute mid sync = %v, want ErrSyncing", err)
	}
	restarted, err := ledger.New(st, srv.b.V.Genesis)
	if err != nil {
		t.Fatal(err)
	}
	if restarted.Version() != 21 || restarted.Committed() != client.Committed() {
		t.Fatalf("restarted mid sync: version %d", restarted.Version())
	}
	syncTo(t, srv.ledger, restarted, target, 10)
	if restarted.Committed() != target.LedgerInfo.CommitInfo {
		t.Fatal("resumed sync did not reach the target")
	}
}

// TestFastForward reaches a target whose last blocks hold no transaction.
func TestFastForward(t *testing.T) {
	srv := newSized(t, 13, []int{4, 0, 0}, 20)
	client, _ := newLedger(t, srv.b.V.Genesis)
	syncTo(t, srv.ledger, client, srv.lis[0], 100)
	if err := client.FastForward(srv.lis[2]); err != nil {
		t.Fatal(err)
	}
	if client.Committed() != srv.lis[2].LedgerInfo.CommitInfo || client.LedgerInfo() != srv.lis[2] {
		t.Fatalf("Committed() = %+v", client.Committed())
	}
	if err := client.FastForward(srv.lis[2]); err != nil {
		t.Fatalf("FastForward again = %v", err)
	}
	if err := client.FastForward(srv.lis[1]); !errors.Is(err, ledger.ErrCommitMismatch) {
		t.Fatalf("FastForward(older) = %v, want ErrCommitMismatch", err)
	}
	other := newSized(t, 14, []int{4}, 20)
	if err := client.FastForward(other.lis[0]); !errors.Is(err, ledger.ErrCommitMismatch) {
		t.Fatalf("FastForward(other chain) = %v, want ErrCommitMismatch", err)
	}
	more := newSized(t, 13, []int{4, 0, 0, 3}, 20)
	if err := client.FastForward(more.lis[3]); !errors.Is(err, ledger.ErrVersionNotAvailable) {
		t.Fatalf("FastForward(ahead) = %v, want ErrVersionNotAvailable", err)
	}
}

func TestGetChunkErrors(t *testing.T) {
	srv := newSized(t, 15, []int{10}, 20)
	tests := []struct {
		name               string
		start, target, max uint64
		wantErr            error
	}{
		{"target past version", 0, 11, 5, ledger.ErrVersionNotAvailable},
		{"start at target", 10, 10, 5, ledger.ErrBadRequest},
		{"start past target", 11, 10, 5, ledger.ErrBadRequest},
		{"max zero", 0, 10, 0, ledger.ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := srv.ledger.GetChunk(tt.start, tt.target, tt.max); !errors.Is(err, tt.wantErr) {
				t.Fatalf("GetChunk = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestGetChunkLimits(t *testing.T) {
	t.Run("bytes", func(t *testing.T) {
		srv := newSized(t, 16, []int{50, 50}, 60_000)
		c, err := srv.ledger.GetChunk(3, 100, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if want := ledger.MaxChunkBytes / 60_000; len(c.Txs) != want {
			t.Fatalf("chunk of %d transactions of 60000 bytes, want %d", len(c.Txs), want)
		}
		client, _ := newLedger(t, srv.b.V.Genesis)
		syncTo(t, srv.ledger, client, srv.lis[1], 3)
	})
	t.Run("count", func(t *testing.T) {
		srv := newSized(t, 17, []int{ledger.MaxChunkTxs + 10}, 11)
		c, err := srv.ledger.GetChunk(0, srv.ledger.Version(), 1<<40)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Txs) != ledger.MaxChunkTxs {
			t.Fatalf("chunk of %d transactions, want %d", len(c.Txs), ledger.MaxChunkTxs)
		}
	})
}
