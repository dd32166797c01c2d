package syncer

import (
	"errors"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/chain/statetree"
	"github.com/p2pnode/p2pnode/protocol"
)

// The server side of the sync protocols: pure functions over the local
// chain, so that node's stream handlers and the tests' fake peers answer
// requests the same way.

// BlockSource looks up a block by id: in the block tree first, then among
// the committed blocks kept in storage.
type BlockSource interface {
	GetBlock(id chain.Hash) (*chain.Block, bool)
}

// BlockSourceFunc adapts a function to BlockSource.
type BlockSourceFunc func(id chain.Hash) (*chain.Block, bool)

// GetBlock calls f.
func (f BlockSourceFunc) GetBlock(id chain.Hash) (*chain.Block, bool) { return f(id) }

// ServeBlocks answers a block request from src: req.BlockID and its
// ancestors, newest first, until req.Count blocks, the target, a block src
// does not have, or maxBytes of encoded blocks (at least one block is always
// sent when the first is known).
func ServeBlocks(src BlockSource, req *protocol.BlockRequest, maxBytes int) *protocol.BlockResponse {
	if err := req.Validate(); err != nil {
		return &protocol.BlockResponse{Status: protocol.StatusBadRequest}
	}
	b, ok := src.GetBlock(req.BlockID)
	if !ok {
		return &protocol.BlockResponse{Status: protocol.StatusIDNotFound}
	}
	resp := &protocol.BlockResponse{Status: protocol.StatusSucceeded}
	size := 0
	for {
		n := encodedSize(b)
		if len(resp.Blocks) > 0 && size+n > maxBytes {
			return resp // cut by bytes: the client asks again for the rest
		}
		resp.Blocks = append(resp.Blocks, b)
		size += n
		if len(resp.Blocks) == int(req.Count) {
			return resp
		}
		parent := b.ParentID()
		if !req.Target.IsZero() && parent == req.Target {
			resp.Status = protocol.StatusSucceededWithTarget
			return resp
		}
		if b.IsGenesis() {
			resp.Status = protocol.StatusNotEnoughBlocks
			return resp
		}
		if b, ok = src.GetBlock(parent); !ok {
			resp.Status = protocol.StatusNotEnoughBlocks
			return resp
		}
	}
}

// ServeCommitted answers a committed-range request from the archive of l's
// committed blocks: those of rounds [req.FromRound, req.ToRound), oldest
// first, until req.MaxBlocks blocks or maxBytes of encoded blocks (at least
// one block is always sent when there is one). The status is
// not_enough_blocks when l's committed chain does not reach
// req.ToRound-1, with the blocks it has, and pruned (with no block) when
// l keeps no history below the first block it would send: that block's
// parent is neither archived nor the genesis, as for a node that pruned
// its history or state-synced past it.
func ServeCommitted(l *ledger.Ledger, req *protocol.CommittedRequest, maxBytes int) *protocol.CommittedResponse {
	if err := req.Validate(); err != nil {
		return &protocol.CommittedResponse{Status: protocol.StatusBadRequest}
	}
	// One block more than asked tells whether the chain goes on past the
	// blocks sent.
	cbs, err := l.BlocksFrom(req.FromRound, int(req.MaxBlocks)+1)
	if err != nil {
		return &protocol.CommittedResponse{Status: protocol.StatusBusy}
	}
	if len(cbs) > 0 && cbs[0].Block.Round() > req.FromRound && !l.HasHistoryBelow(cbs[0].Block) {
		return &protocol.CommittedResponse{Status: protocol.StatusPruned}
	}
	resp := &protocol.CommittedResponse{Status: protocol.StatusSucceeded}
	size := 0
	for _, cb := range cbs {
		b := cb.Block
		if b.Round() >= req.ToRound {
			return resp // the chain reaches past the range
		}
		n := encodedSize(b)
		if len(resp.Blocks) == int(req.MaxBlocks) || (len(resp.Blocks) > 0 && size+n > maxBytes) {
			return resp // cut: the client asks again for the rest
		}
		resp.Blocks = append(resp.Blocks, b)
		size += n
	}
	// The archive ends inside the range.
	if len(resp.Blocks) == 0 || resp.Blocks[len(resp.Blocks)-1].Round() < req.ToRound-1 {
		resp.Status = protocol.StatusNotEnoughBlocks
	}
	return resp
}

// encodedSize estimates a block's encoded size from its payload; the
// overhead of the header and QC is bounded by the validator set size.
func encodedSize(b *chain.Block) int {
	n := 512 + 128*len(b.Data.QuorumCert.SignedLedgerInfo.Signatures)
	for _, tx := range b.Payload() {
		n += len(tx) + 5
	}
	return n
}

// ServeChunk answers a chunk request from the committed ledger l: pruned
// when l's storage keeps no transactions from req.StartVersion.
func ServeChunk(l *ledger.Ledger, req *protocol.ChunkRequest) *protocol.ChunkResponse {
	if err := req.Validate(); err != nil {
		return &protocol.ChunkResponse{Status: protocol.StatusBadRequest}
	}
	c, err := l.GetChunk(req.StartVersion, req.TargetVersion, uint64(req.MaxTxs))
	switch {
	case errors.Is(err, ledger.ErrVersionNotAvailable):
		return &protocol.ChunkResponse{Status: protocol.StatusNotEnoughBlocks}
	case errors.Is(err, ledger.ErrPruned):
		return &protocol.ChunkResponse{Status: protocol.StatusPruned}
	case err != nil:
		return &protocol.ChunkResponse{Status: protocol.StatusBusy}
	}
	return &protocol.ChunkResponse{Status: protocol.StatusSucceeded, Chunk: c}
}

// ServeState answers a state chunk request from the state tree of l:
// not enough blocks while the tree has not reached req.Version, pruned
// when l keeps no tree of req.Version (or no accumulator frontier of it).
func ServeState(l *ledger.Ledger, req *protocol.StateRequest) *protocol.StateResponse {
	if err := req.Validate(); err != nil {
		return &protocol.StateResponse{Status: protocol.StatusBadRequest}
	}
	unavailable := func(err error) *protocol.StateResponse {
		switch {
		case errors.Is(err, ledger.ErrVersionNotAvailable):
			return &protocol.StateResponse{Status: protocol.StatusNotEnoughBlocks}
		case errors.Is(err, statetree.ErrNodeNotFound), errors.Is(err, ledger.ErrPruned):
			return &protocol.StateResponse{Status: protocol.StatusPruned}
		}
		return &protocol.StateResponse{Status: protocol.StatusBusy}
	}
	c, err := l.StateChunk(req.Version, req.Start, int(req.MaxLeaves))
	if err != nil {
		return unavailable(err)
	}
	resp := &protocol.StateResponse{Status: protocol.StatusSucceeded, Chunk: c}
	if req.WithFrontier {
		if resp.Frontier, err = l.FrontierAt(req.Version); err != nil {
			return unavailable(err)
		}
	}
	return resp
}
