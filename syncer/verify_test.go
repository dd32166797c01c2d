package syncer_test

import (
	"errors"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/protocol"
	"github.com/p2pnode/p2pnode/syncer"
)

// forgedQCBlock returns a copy of nd's block whose embedded QC is replaced
// by q, resealed by its author, and a valid QC certifying that copy: the
// response then fails on the embedded QC alone.
func forgedQCBlock(w *world, nd *chaintest.Node, q chain.LedgerInfoWithSignatures) (*chain.Block, chain.QuorumCert) {
	b := chaintest.CloneBlock(nd.Block)
	b.Data.QuorumCert.SignedLedgerInfo = q
	w.v.Reseal(b)
	info := b.Info(nd.Info.ExecutedStateID, nd.Info.StateRoot, nd.Info.Version)
	return b, w.v.SignQC(chain.VoteDataFor(b, info), chain.BlockInfo{}, w.v.All())
}

func TestVerifyBlockResponse(t *testing.T) {
	w := newWorld(t, 4, 10, 2)
	blk := func(i int) *chain.Block { return w.nodes[i-1].Block } // by round
	chainOf := func(rounds ...int) []*chain.Block {
		out := make([]*chain.Block, len(rounds))
		for i, r := range rounds {
			out[i] = blk(r)
		}
		return out
	}
	qc10 := w.nodes[9].QC
	badSig := chaintest.CloneBlock(blk(8))
	badSig.Signature[3] ^= 1

	nd := w.nodes[9]
	li := nd.Block.Data.QuorumCert.SignedLedgerInfo.LedgerInfo
	others := chaintest.NewValidators(99, 4)
	outsiders, qcOutsiders := forgedQCBlock(w, nd, others.SignLedgerInfo(li, others.All()))
	minority, qcMinority := forgedQCBlock(w, nd, w.v.SignLedgerInfo(li, []int{0, 1}))

	ok := protocol.StatusSucceeded
	tests := []struct {
		name    string
		status  protocol.Status
		blocks  []*chain.Block
		qc      chain.QuorumCert
		n       int
		target  int // round of the target; 0 none
		wantErr error
	}{
		{"exact count", ok, chainOf(10, 9, 8, 7), qc10, 4, 0, nil},
		{"one block, seed mode", ok, chainOf(10), qc10, 1, 0, nil},
		{"fewer than asked", ok, chainOf(10, 9), qc10, 4, 0, nil},
		{"down to the target", protocol.StatusSucceededWithTarget, chainOf(10, 9, 8, 7), qc10, 8, 6, nil},
		{"target status without target", protocol.StatusSucceededWithTarget, chainOf(10, 9), qc10, 4, 0, syncer.ErrMisbehaved},
		{"target status, target not reached", protocol.StatusSucceededWithTarget, chainOf(10, 9), qc10, 4, 6, syncer.ErrMisbehaved},
		{"target sent", ok, chainOf(10, 9, 8), qc10, 4, 8, syncer.ErrMisbehaved},
		{"not enough blocks", protocol.StatusNotEnoughBlocks, nil, qc10, 4, 0, syncer.ErrUnavailable},
		{"id not found", protocol.StatusIDNotFound, nil, qc10, 4, 0, syncer.ErrUnavailable},
		{"busy", protocol.StatusBusy, nil, qc10, 4, 0, syncer.ErrUnavailable},
		{"bad request status", protocol.StatusBadRequest, chainOf(10), qc10, 4, 0, syncer.ErrMisbehaved},
		{"unknown status", protocol.Status(99), chainOf(10), qc10, 4, 0, syncer.ErrMisbehaved},
		{"success without blocks", ok, nil, qc10, 4, 0, syncer.ErrMisbehaved},
		{"more than asked", ok, chainOf(10, 9), qc10, 1, 0, syncer.ErrMisbehaved},
		{"wrong first block", ok, chainOf(9, 8), qc10, 4, 0, syncer.ErrMisbehaved},
		{"nil first block", ok, []*chain.Block{nil}, qc10, 4, 0, syncer.ErrMisbehaved},
		{"nil later block", ok, []*chain.Block{blk(10), nil}, qc10, 4, 0, syncer.ErrMisbehaved},
		{"broken parent link", ok, chainOf(10, 8), qc10, 4, 0, syncer.ErrMisbehaved},
		{"child after parent", ok, chainOf(10, 9, 10), qc10, 4, 0, syncer.ErrMisbehaved},
		{"bad signature", ok, []*chain.Block{blk(10), blk(9), badSig}, qc10, 4, 0, syncer.ErrMisbehaved},
		{"embedded QC by outsiders", ok, []*chain.Block{outsiders}, qcOutsiders, 1, 0, syncer.ErrMisbehaved},
		{"embedded QC without quorum", ok, []*chain.Block{minority}, qcMinority, 1, 0, syncer.ErrMisbehaved},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var target chain.Hash
			if tt.target > 0 {
				target = blk(tt.target).ID
			}
			resp := &protocol.BlockResponse{Status: tt.status, Blocks: tt.blocks}
			err := syncer.VerifyBlockResponse(w.v.Verifier, resp, &tt.qc, tt.n, target)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if errors.Is(err, syncer.ErrMisbehaved) && errors.Is(err, syncer.ErrUnavailable) {
				t.Fatal("an error both blames and excuses the peer")
			}
		})
	}
	// The forged blocks fail on their embedded QC, not on the structure.
	for _, b := range []*chain.Block{outsiders, minority} {
		var ve *chain.VerifyError
		if err := w.v.Verifier.VerifyBlock(b); !errors.As(err, &ve) {
			t.Fatalf("forged block: %v, want a *chain.VerifyError", err)
		}
	}
}

func TestServeBlocks(t *testing.T) {
	w := newWorld(t, 4, 10, 2)
	id := func(r int) chain.Hash {
		if r == 0 {
			return w.v.Genesis.Block().ID
		}
		return w.nodes[r-1].Block.ID
	}
	size := 0 // a generous per-block byte budget
	for _, tx := range w.nodes[5].Block.Payload() {
		size += len(tx) + 5
	}
	size += 512 + 128*len(w.v.Signers)
	partial := syncer.BlockSourceFunc(func(h chain.Hash) (*chain.Block, bool) {
		if h == id(7) {
			return nil, false
		}
		return w.server.store.GetBlock(h)
	})
	withGenesis := syncer.BlockSourceFunc(func(h chain.Hash) (*chain.Block, bool) {
		if h == id(0) {
			return w.v.Genesis.Block(), true
		}
		return w.server.store.GetBlock(h)
	})
	tests := []struct {
		name       string
		src        syncer.BlockSource
		req        protocol.BlockRequest
		maxBytes   int
		wantStatus protocol.Status
		wantRounds []int
	}{
		{"count", w.server.store, protocol.BlockRequest{BlockID: id(10), Count: 4}, 1 << 20, protocol.StatusSucceeded, []int{10, 9, 8, 7}},
		{"one", w.server.store, protocol.BlockRequest{BlockID: id(10), Count: 1}, 1 << 20, protocol.StatusSucceeded, []int{10}},
		{"target", w.server.store, protocol.BlockRequest{BlockID: id(10), Count: 8, Target: id(6)}, 1 << 20, protocol.StatusSucceededWithTarget, []int{10, 9, 8, 7}},
		{"count before target", w.server.store, protocol.BlockRequest{BlockID: id(10), Count: 2, Target: id(6)}, 1 << 20, protocol.StatusSucceeded, []int{10, 9}},
		{"byte cap", w.server.store, protocol.BlockRequest{BlockID: id(10), Count: 8}, 2*size + size/2, protocol.StatusSucceeded, []int{10, 9}},
		{"byte cap below one block", w.server.store, protocol.BlockRequest{BlockID: id(10), Count: 8}, 1, protocol.StatusSucceeded, []int{10}},
		{"archived blocks", w.server.store, protocol.BlockRequest{BlockID: id(3), Count: 2}, 1 << 20, protocol.StatusSucceeded, []int{3, 2}},
		{"genesis end", withGenesis, protocol.BlockRequest{BlockID: id(3), Count: 10}, 1 << 20, protocol.StatusNotEnoughBlocks, []int{3, 2, 1, 0}},
		{"genesis counted", withGenesis, protocol.BlockRequest{BlockID: id(2), Count: 3}, 1 << 20, protocol.StatusSucceeded, []int{2, 1, 0}},
		{"archive without genesis", w.server.store, protocol.BlockRequest{BlockID: id(3), Count: 10}, 1 << 20, protocol.StatusNotEnoughBlocks, []int{3, 2, 1}},
		{"missing ancestor", partial, protocol.BlockRequest{BlockID: id(10), Count: 8}, 1 << 20, protocol.StatusNotEnoughBlocks, []int{10, 9, 8}},
		{"unknown id", w.server.store, protocol.BlockRequest{BlockID: chain.Hash{1}, Count: 8}, 1 << 20, protocol.StatusIDNotFound, nil},
		{"zero count", w.server.store, protocol.BlockRequest{BlockID: id(10)}, 1 << 20, protocol.StatusBadRequest, nil},
		{"count over the limit", w.server.store, protocol.BlockRequest{BlockID: id(10), Count: protocol.MaxBlocksPerRequest + 1}, 1 << 20, protocol.StatusBadRequest, nil},
		{"zero id", w.server.store, protocol.BlockRequest{Count: 1}, 1 << 20, protocol.StatusBadRequest, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := syncer.ServeBlocks(tt.src, &tt.req, tt.maxBytes)
			if resp.Status != tt.wantStatus {
				t.Fatalf("status %s, want %s", resp.Status, tt.wantStatus)
			}
			if len(resp.Blocks) != len(tt.wantRounds) {
				t.Fatalf("%d blocks, want %d", len(resp.Blocks), len(tt.wantRounds))
			}
			for i, r := range tt.wantRounds {
				if resp.Blocks[i].ID != id(r) {
					t.Fatalf("block %d is of round %d, want %d", i, resp.Blocks[i].Round(), r)
				}
			}
		})
	}
}
