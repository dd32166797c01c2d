package bench

import (
	"context"
	"encoding/binary"
	"io"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/protocol"
)

func TestChunkResponse(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Blocks, cfg.TxsPerBlock, cfg.TxSize = 20, 10, 60
	cfg.CacheDir = t.TempDir()
	ctx := context.Background()
	c, err := openChain(ctx, &cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	chunks, err := openChunks(ctx, &cfg, c, 50, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer chunks.Close()
	if want := uint64(18 * 10); chunks.target != want {
		t.Fatalf("chunks prove against version %d, want %d", chunks.target, want)
	}
	for _, tt := range []struct {
		name       string
		req        protocol.ChunkRequest
		wantStatus protocol.Status
		wantHit    bool
	}{
		{"planned", protocol.ChunkRequest{StartVersion: 50, TargetVersion: chunks.target, MaxTxs: 50}, protocol.StatusSucceeded, true},
		{"last", protocol.ChunkRequest{StartVersion: 150, TargetVersion: chunks.target, MaxTxs: 30}, protocol.StatusSucceeded, true},
		{"off the plan", protocol.ChunkRequest{StartVersion: 1, TargetVersion: chunks.target, MaxTxs: 50}, protocol.StatusNotEnoughBlocks, false},
		{"other target", protocol.ChunkRequest{StartVersion: 0, TargetVersion: chunks.target - 1, MaxTxs: 50}, protocol.StatusNotEnoughBlocks, false},
		{"bad request", protocol.ChunkRequest{StartVersion: 0, TargetVersion: chunks.target, MaxTxs: 0}, protocol.StatusBadRequest, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			frame, hit, err := chunks.response(&tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if hit != tt.wantHit {
				t.Fatalf("hit %v, want %v", hit, tt.wantHit)
			}
			_, n := binary.Uvarint(frame)
			var resp protocol.ChunkResponse
			if err := chain.Decode(frame[n:], protocol.MaxChunkResponseSize, &resp); err != nil {
				t.Fatal(err)
			}
			if resp.Status != tt.wantStatus {
				t.Fatalf("status %s, want %s", resp.Status, tt.wantStatus)
			}
			if resp.Chunk == nil {
				return
			}
			if err := ledger.VerifyChunk(resp.Chunk, resp.Chunk.Left, tt.req.StartVersion, c.CommittedInfo()); err != nil {
				t.Fatal(err)
			}
		})
	}
}
