package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"path/filepath"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/blockstore"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/chain/statetree"
	"github.com/p2pnode/p2pnode/protocol"
	"github.com/p2pnode/p2pnode/syncer"
)

// openTestSnapshot builds a small chain and its snapshot in chunks of
// chunkLeaves leaves.
func openTestSnapshot(t *testing.T, stateKeys, chunkLeaves int) (*chainFile, *snapshotFile) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Mode = ModeSnapshot
	cfg.Blocks, cfg.TxsPerBlock, cfg.TxSize, cfg.StateKeys = 30, 20, 60, stateKeys
	cfg.CacheDir = t.TempDir()
	ctx := context.Background()
	c, err := openChain(ctx, &cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := openSnapshot(ctx, &cfg, c, chunkLeaves, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return c, s
}

// servingLedger builds the ledger of c on a store, as a node that
// committed the chain holds it.
func servingLedger(t *testing.T, c *chainFile) *ledger.Ledger {
	t.Helper()
	o, err := blockstore.Open(filepath.Join(t.TempDir(), "ledger.db"), c.v.Genesis, blockstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Disk.Close() })
	if err := insertAll(context.Background(), c, o.Blocks, 256); err != nil {
		t.Fatal(err)
	}
	return o.Ledger
}

// TestSnapshotMatchesServeState checks that every planned answer of the
// snapshot file is, byte for byte, what syncer.ServeState answers from a
// node's ledger holding the chain: the same leaves, proofs and frontier.
func TestSnapshotMatchesServeState(t *testing.T) {
	for _, tt := range []struct {
		name       string
		keys       int
		wantLeaves uint64
	}{
		{"overwritten keys", 150, 150},
		{"fresh keys", 0, 28 * 20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const chunkLeaves = 16
			c, s := openTestSnapshot(t, tt.keys, chunkLeaves)
			l := servingLedger(t, c)
			if s.target != c.CommittedInfo().Version || s.leaves != tt.wantLeaves {
				t.Fatalf("snapshot of version %d with %d leaves, want %d with %d", s.target, s.leaves, c.CommittedInfo().Version, tt.wantLeaves)
			}
			if want := (int(tt.wantLeaves) + chunkLeaves - 1) / chunkLeaves; len(s.chunks) != want {
				t.Fatalf("%d chunks, want %d", len(s.chunks), want)
			}
			var start chain.Hash
			total := 0
			for i, ch := range s.chunks {
				req := protocol.StateRequest{Version: s.target, Start: start, MaxLeaves: chunkLeaves, WithFrontier: i == 0}
				frame, hit, err := s.response(&req)
				if err != nil || !hit {
					t.Fatalf("chunk %d: hit %v, err %v", i, hit, err)
				}
				want, err := chain.Encode(syncer.ServeState(l, &req))
				if err != nil {
					t.Fatal(err)
				}
				_, n := binary.Uvarint(frame)
				if got := frame[n:]; !bytes.Equal(got, want) {
					t.Fatalf("chunk %d differs from ServeState's: %d bytes, want %d", i, len(got), len(want))
				}
				resp, err := s.decode(i)
				if err != nil {
					t.Fatal(err)
				}
				total += ch.leaves
				last := resp.Chunk.Leaves[len(resp.Chunk.Leaves)-1].Key
				start, _ = successorHash(statetree.KeyHash(last))
			}
			if uint64(total) != s.leaves {
				t.Fatalf("chunks hold %d leaves, the index says %d", total, s.leaves)
			}
			// The syncer asks past the last chunk before it verifies it.
			req := protocol.StateRequest{Version: s.target, Start: start, MaxLeaves: chunkLeaves}
			frame, hit, err := s.response(&req)
			if err != nil || !hit {
				t.Fatalf("past the end: hit %v, err %v", hit, err)
			}
			want, err := chain.Encode(syncer.ServeState(l, &req))
			if err != nil {
				t.Fatal(err)
			}
			if _, n := binary.Uvarint(frame); !bytes.Equal(frame[n:], want) {
				t.Fatalf("past the end: %x, ServeState's %x", frame[n:], want)
			}
		})
	}
}

func TestSnapshotMisses(t *testing.T) {
	_, s := openTestSnapshot(t, 100, 16)
	second := s.chunks[1].start
	for _, tt := range []struct {
		name       string
		req        protocol.StateRequest
		wantStatus protocol.Status
		wantHit    bool
	}{
		{"first", protocol.StateRequest{Version: s.target, MaxLeaves: 16, WithFrontier: true}, protocol.StatusSucceeded, true},
		{"second", protocol.StateRequest{Version: s.target, Start: second, MaxLeaves: 16}, protocol.StatusSucceeded, true},
		{"past the end", protocol.StateRequest{Version: s.target, Start: s.end, MaxLeaves: 16}, protocol.StatusSucceeded, true},
		{"past the end, other max leaves", protocol.StateRequest{Version: s.target, Start: s.end, MaxLeaves: 15}, protocol.StatusBusy, false},
		{"first without frontier", protocol.StateRequest{Version: s.target, MaxLeaves: 16}, protocol.StatusBusy, false},
		{"frontier off the first", protocol.StateRequest{Version: s.target, Start: second, MaxLeaves: 16, WithFrontier: true}, protocol.StatusBusy, false},
		{"off the starts", protocol.StateRequest{Version: s.target, Start: chain.Hash{1}, MaxLeaves: 16}, protocol.StatusBusy, false},
		{"other max leaves", protocol.StateRequest{Version: s.target, Start: second, MaxLeaves: 17}, protocol.StatusBusy, false},
		{"other version", protocol.StateRequest{Version: s.target - 1, Start: second, MaxLeaves: 16}, protocol.StatusBusy, false},
		{"bad request", protocol.StateRequest{Version: 0, MaxLeaves: 16}, protocol.StatusBadRequest, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			frame, hit, err := s.response(&tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if hit != tt.wantHit {
				t.Fatalf("hit %v, want %v", hit, tt.wantHit)
			}
			_, n := binary.Uvarint(frame)
			var resp protocol.StateResponse
			if err := chain.Decode(frame[n:], protocol.MaxStateResponseSize, &resp); err != nil {
				t.Fatal(err)
			}
			if resp.Status != tt.wantStatus {
				t.Fatalf("status %s, want %s", resp.Status, tt.wantStatus)
			}
		})
	}
}
