package syncer_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/protocol"
	"github.com/p2pnode/p2pnode/syncer"
)

// walkConfig fetches block by block (no fast-forward), asking for n blocks
// per request.
func walkConfig(n int) syncer.Config {
	c := syncer.SeedConfig()
	if n > 1 {
		c = syncer.DefaultConfig()
	}
	c.BlocksPerRequest = n
	c.FastForwardRounds = 1 << 40
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestFetchQuorumCertInsertsOldestFirst: the blocks are persisted oldest
// first (in the tree, or in the archive by a commit), each saved in the tree
// after (or atomically with) the QC certifying its parent, and the fetched
// QC is the last tree write. In the seed's mode the exact order is block, its QC,
// next block, and so on.
func TestFetchQuorumCertInsertsOldestFirst(t *testing.T) {
	for _, n := range []int{1, 8} {
		w := newWorld(t, 4, 20, 2)
		rec := newRecorder()
		c, m := w.clientWith(t, walkConfig(n), "client", rec)
		top := w.nodes[19].QC
		if err := m.FetchQuorumCert(testCtx(t), top, w.author()); err != nil {
			t.Fatalf("%d per request: %v", n, err)
		}
		if got := c.store.HighestQC(); got.CertifiedBlock() != top.CertifiedBlock() {
			t.Fatalf("%d per request: highest QC round %d, want %d", n, got.Round(), top.Round())
		}
		// Flatten the writes: within one write, QCs count before blocks.
		const (
			block = iota
			qc
			archived
		)
		type item struct {
			kind int
			id   chain.Hash
		}
		var got []item
		for _, ev := range rec.log() {
			for _, id := range ev.qcs {
				got = append(got, item{qc, id})
			}
			for _, id := range ev.blocks {
				if ev.archived {
					got = append(got, item{archived, id})
				} else {
					got = append(got, item{block, id})
				}
			}
		}
		pos := map[item]int{}
		for i, it := range got {
			if _, dup := pos[it]; dup {
				t.Fatalf("%d per request: %v persisted twice", n, it)
			}
			pos[it] = i
		}
		// first returns where block id was first persisted, in the tree or
		// in the archive.
		first := func(id chain.Hash) (int, bool) {
			b, inTree := pos[item{block, id}]
			a, inArchive := pos[item{archived, id}]
			switch {
			case inTree && inArchive:
				return min(a, b), true
			case inArchive:
				return a, true
			}
			return b, inTree
		}
		for i, nd := range w.nodes {
			if _, ok := first(nd.Block.ID); !ok {
				t.Fatalf("%d per request: block %d not persisted", n, i)
			}
			if i == 0 {
				continue
			}
			// Oldest first in each of the two places. (The tree gets a new
			// root and its descendants just before the commit that
			// archives their ancestors.)
			parent := w.nodes[i-1].Block.ID
			for _, kind := range []int{block, archived} {
				at, ok := pos[item{kind, nd.Block.ID}]
				if p, pok := pos[item{kind, parent}]; ok && pok && at <= p {
					t.Fatalf("%d per request: block %d persisted before its parent", n, i)
				}
			}
			// A block saved in the tree after its parent was saved there
			// comes after the QC certifying the parent. (A block archived,
			// or saved as a new root, needs no QC of its parent: the
			// commit's ledger info vouches for the archived chain.)
			if _, parentInTree := pos[item{block, parent}]; parentInTree {
				if _, inTree := pos[item{block, nd.Block.ID}]; inTree {
					if q, ok := pos[item{qc, parent}]; !ok || q > pos[item{block, nd.Block.ID}] {
						t.Fatalf("%d per request: block %d persisted before its QC", n, i)
					}
				}
			}
		}
		var last item
		for _, it := range got {
			if it.kind != archived {
				last = it
			}
		}
		if last != (item{qc, top.CertifiedBlock().ID}) {
			t.Fatalf("%d per request: the fetched QC is not the last tree write", n)
		}
		if n == 1 {
			// One block per insert: each is saved in the tree with the QC
			// of its parent; the commits archive them later.
			var want []item
			for i, nd := range w.nodes {
				want = append(want, item{block, nd.Block.ID}, item{qc, w.nodes[i].Block.ID})
			}
			var tree []item
			for _, it := range got {
				if it.kind != archived {
					tree = append(tree, it)
				}
			}
			if len(tree) != len(want) {
				t.Fatalf("seed mode: %d tree writes, want %d", len(tree), len(want))
			}
			for i := range want {
				if tree[i] != want[i] {
					t.Fatalf("seed mode: tree write %d is %v, want %v", i, tree[i], want[i])
				}
			}
		}
	}
}

// TestFetchQuorumCertMissingAncestors: when no peer has the ancestors, the
// QC is not added and nothing is inserted or persisted.
func TestFetchQuorumCertMissingAncestors(t *testing.T) {
	for _, n := range []int{1, 8} {
		w := newWorld(t, 4, 20, 2)
		missing := map[chain.Hash]bool{}
		for _, nd := range w.nodes[:10] {
			missing[nd.Block.ID] = true
		}
		for _, id := range w.net.Peers() {
			w.net.Peer(id).OnBlocks = func(_ context.Context, req protocol.BlockRequest, honest func() *protocol.BlockResponse) (*protocol.BlockResponse, error) {
				if missing[req.BlockID] {
					return &protocol.BlockResponse{Status: protocol.StatusIDNotFound}, nil
				}
				resp := honest()
				for i, b := range resp.Blocks {
					if missing[b.ID] {
						resp.Blocks, resp.Status = resp.Blocks[:i], protocol.StatusNotEnoughBlocks
						break
					}
				}
				return resp, nil
			}
		}
		rec := newRecorder()
		c, m := w.clientWith(t, walkConfig(n), "client", rec)
		before := c.store.HighestQC()
		err := m.FetchQuorumCert(testCtx(t), w.nodes[19].QC, w.author())
		if !errors.Is(err, syncer.ErrAllPeersFailed) {
			t.Fatalf("%d per request: err %v, want ErrAllPeersFailed", n, err)
		}
		if got := c.store.HighestQC(); got.CertifiedBlock() != before.CertifiedBlock() {
			t.Fatalf("%d per request: highest QC moved to round %d", n, got.Round())
		}
		for i, nd := range w.nodes {
			if c.store.BlockExists(nd.Block.ID) {
				t.Fatalf("%d per request: block %d entered the tree", n, i)
			}
		}
		if evs := rec.log(); len(evs) != 0 {
			t.Fatalf("%d per request: %d writes to storage, want none", n, len(evs))
		}
		if c.ledger.Version() != 0 {
			t.Fatalf("%d per request: ledger moved to version %d", n, c.ledger.Version())
		}
	}
}

// TestFastForwardPersistsBeforeStateSync: the committed 3-chain and its QCs
// are durable, in one write, before the first chunk is requested; the tree
// is rebuilt with root (B0, C0, C2) and blocks B1, B2.
func TestFastForwardPersistsBeforeStateSync(t *testing.T) {
	w := newWorld(t, 4, 30, 4)
	n := len(w.nodes)
	b0, b1, b2 := w.nodes[n-3], w.nodes[n-2], w.nodes[n-1]
	rec := newRecorder()
	var chunkRequests, savedFirst atomic.Int32
	for _, id := range w.net.Peers() {
		w.net.Peer(id).OnChunk = func(_ context.Context, _ protocol.ChunkRequest, honest func() *protocol.ChunkResponse) (*protocol.ChunkResponse, error) {
			if chunkRequests.Add(1) == 1 && rec.has(b0.Block.ID, true) && rec.has(b1.Block.ID, true) && rec.has(b2.Block.ID, true) {
				savedFirst.Store(1)
			}
			return honest(), nil
		}
	}
	cfg := syncer.SeedConfig()
	cfg.ChunkTxs = 16
	c, m := w.clientWith(t, cfg, "client", rec)
	if err := m.SyncTo(testCtx(t), w.syncInfo(), w.author()); err != nil {
		t.Fatal(err)
	}
	if chunkRequests.Load() < 2 {
		t.Fatalf("%d chunk requests, want several", chunkRequests.Load())
	}
	if savedFirst.Load() != 1 {
		t.Fatal("the 3-chain was not persisted when the first chunk was requested")
	}
	first := rec.log()[0]
	if len(first.blocks) != 3 || len(first.qcs) != 3 {
		t.Fatalf("first write: %d blocks and %d QCs, want the 3-chain in one write", len(first.blocks), len(first.qcs))
	}
	root := c.store.Root()
	if root.Block.ID != b0.Block.ID || root.Info != b0.Info || root.QC.Hash() != b0.QC.Hash() || root.LedgerInfo.Hash() != b2.QC.Hash() {
		t.Fatalf("root round %d, want (B0, C0, C2) of round %d", root.Info.Round, b0.Round())
	}
	for _, nd := range []int{n - 2, n - 1} {
		if !c.store.BlockExists(w.nodes[nd].Block.ID) {
			t.Fatalf("block %d missing after the rebuild", nd)
		}
	}
	if c.store.BlockExists(w.nodes[n-4].Block.ID) {
		t.Fatal("the block before B0 is in the rebuilt tree")
	}
	if got := m.Stats().FastForwards; got != 1 {
		t.Fatalf("%d fast-forwards, want 1", got)
	}
	w.checkSynced(t, c)
}

// TestFastForwardChecksCommittedBlock: a commit cert whose commit info names
// a block other than the 3-chain's first is refused before anything is
// persisted or state-synced.
func TestFastForwardChecksCommittedBlock(t *testing.T) {
	w := newWorld(t, 4, 30, 4)
	n := len(w.nodes)
	b2 := w.nodes[n-1]
	commit := b2.QC.CommitInfo()
	commit.ID[0] ^= 1 // same round, version and time: only the id lies
	forged := w.v.SignQC(chain.VoteDataFor(b2.Block, b2.Info), commit, w.v.All())
	if err := w.v.Verifier.VerifyQC(&forged); err != nil {
		t.Fatalf("the forged commit cert must verify on its own: %v", err)
	}
	var chunkRequests atomic.Int32
	for _, id := range w.net.Peers() {
		w.net.Peer(id).OnChunk = func(_ context.Context, _ protocol.ChunkRequest, honest func() *protocol.ChunkResponse) (*protocol.ChunkResponse, error) {
			chunkRequests.Add(1)
			return honest(), nil
		}
	}
	rec := newRecorder()
	c, m := w.clientWith(t, syncer.SeedConfig(), "client", rec)
	err := m.ProcessHighestLedgerInfo(testCtx(t), &forged, w.author())
	if !errors.Is(err, syncer.ErrMisbehaved) {
		t.Fatalf("err %v, want ErrMisbehaved", err)
	}
	if len(rec.log()) != 0 || chunkRequests.Load() != 0 || c.ledger.Version() != 0 {
		t.Fatalf("%d writes, %d chunk requests, version %d: want nothing done", len(rec.log()), chunkRequests.Load(), c.ledger.Version())
	}
}

// TestStateSyncFailureResumes: a state sync that fails returns an error,
// leaves the tree as it was and keeps the chunks it applied; the next sync
// resumes from the ledger's version without fetching them again.
func TestStateSyncFailureResumes(t *testing.T) {
	// Virtual time: a range every peer refuses is retried after pauses
	// before the sync gives up.
	synctest.Test(t, testStateSyncFailureResumes)
}

func testStateSyncFailureResumes(t *testing.T) {
	for _, inFlight := range []int{1, 4} {
		w := newWorld(t, 4, 30, 4)
		var answered, limit atomic.Int64
		limit.Store(5)
		var mu sync.Mutex
		var starts []uint64
		for _, id := range w.net.Peers() {
			w.net.Peer(id).OnChunk = func(_ context.Context, req protocol.ChunkRequest, honest func() *protocol.ChunkResponse) (*protocol.ChunkResponse, error) {
				mu.Lock()
				starts = append(starts, req.StartVersion)
				mu.Unlock()
				if answered.Add(1) > limit.Load() {
					return &protocol.ChunkResponse{Status: protocol.StatusBusy}, nil
				}
				return honest(), nil
			}
		}
		cfg := syncer.SeedConfig()
		cfg.ChunkTxs = 10
		cfg.ChunksInFlight = inFlight
		c, m := w.client(t, cfg)
		err := m.SyncTo(testCtx(t), w.syncInfo(), w.author())
		if !errors.Is(err, syncer.ErrAllPeersFailed) {
			t.Fatalf("%d in flight: err %v, want ErrAllPeersFailed", inFlight, err)
		}
		applied := c.ledger.Version()
		if applied == 0 || applied%10 != 0 || applied > 50 {
			t.Fatalf("%d in flight: ledger at version %d after the failure, want some whole chunks", inFlight, applied)
		}
		if root := c.store.Root(); root.Info != w.v.Genesis.BlockInfo() || c.ledger.Committed() != w.v.Genesis.BlockInfo() {
			t.Fatalf("%d in flight: root moved to round %d", inFlight, root.Info.Round)
		}
		if m.Syncing() {
			t.Fatalf("%d in flight: still syncing", inFlight)
		}
		mu.Lock()
		starts = nil
		mu.Unlock()
		limit.Store(1 << 40)
		if err := m.SyncTo(testCtx(t), w.syncInfo(), w.author()); err != nil {
			t.Fatalf("%d in flight: resume: %v", inFlight, err)
		}
		mu.Lock()
		if len(starts) == 0 || slices.Min(starts) != applied {
			t.Fatalf("%d in flight: resumed with chunk requests at %v, want the lowest at %d", inFlight, starts, applied)
		}
		for _, s := range starts {
			if s < applied {
				t.Fatalf("%d in flight: version %d fetched again (applied up to %d)", inFlight, s, applied)
			}
		}
		mu.Unlock()
		w.checkSynced(t, c)
	}
}

// TestConcurrentSyncsExecuteBlocksOnce: concurrent syncs over overlapping
// chains wait for each other block by block; every block is executed and
// persisted once, and every sync succeeds.
func TestConcurrentSyncsExecuteBlocksOnce(t *testing.T) {
	w := newWorld(t, 4, 250, 1)
	si := func(round int) *chain.SyncInfo {
		qc := w.nodes[round-1].QC
		return &chain.SyncInfo{HighestCommitCert: qc, HighestQC: qc}
	}
	for _, n := range []int{1, 16} {
		for _, rounds := range [][]int{{200, 250}, {250, 200}, {250, 200, 250, 120}} {
			rec := newRecorder()
			c, m := w.clientWith(t, walkConfig(n), "client", rec)
			ctx := testCtx(t)
			start := make(chan struct{})
			errs := make([]error, len(rounds))
			var wg sync.WaitGroup
			for i, r := range rounds {
				wg.Go(func() {
					<-start
					errs[i] = m.SyncTo(ctx, si(r), w.id(i%4))
				})
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("%d per request, rounds %v: sync to %d: %v", n, rounds, rounds[i], err)
				}
			}
			saves, archives := rec.counts()
			for i, nd := range w.nodes {
				id := nd.Block.ID
				if saves[id] > 1 || archives[id] > 1 || saves[id]+archives[id] == 0 {
					t.Fatalf("%d per request, rounds %v: block %d saved in the tree %d times and archived %d times, want each at most once and one of them",
						n, rounds, i+1, saves[id], archives[id])
				}
			}
			if qc := c.store.HighestQC(); qc.Round() != 250 {
				got := qc.Round()
				t.Fatalf("%d per request, rounds %v: highest QC round %d, want 250", n, rounds, got)
			}
		}
	}
}

// TestFetchQuorumCertMaxPendingBytes: a walk back that would hold more than
// MaxPendingBytes of blocks stops with ErrTooFarBehind, holding at most one
// response past the bound, and inserts nothing.
func TestFetchQuorumCertMaxPendingBytes(t *testing.T) {
	for _, n := range []int{1, 4} {
		w := newWorld(t, 4, 40, 10)
		size := w.nodes[5].Block.PayloadSize()
		cfg := walkConfig(n)
		cfg.MaxPendingBytes = 5 * size
		rec := newRecorder()
		c, m := w.clientWith(t, cfg, "client", rec)
		err := m.SyncTo(testCtx(t), w.syncInfo(), w.author())
		if !errors.Is(err, syncer.ErrTooFarBehind) {
			t.Fatalf("%d per request: err %v, want ErrTooFarBehind", n, err)
		}
		if got, max := m.Stats().BlocksFetched, uint64(5+n); got > max {
			t.Fatalf("%d per request: %d blocks fetched, want at most %d", n, got, max)
		}
		if qc := c.store.HighestQC(); len(rec.log()) != 0 || qc.Round() != 0 {
			t.Fatalf("%d per request: blocks inserted", n)
		}
	}
}

// peerIDs returns the ids of validators idx of w.
func (w *world) peerIDs(idx ...int) []peer.ID {
	out := make([]peer.ID, len(idx))
	for i, j := range idx {
		out[i] = w.id(j)
	}
	return out
}

// TestInterruptedStateSyncCompletesWhenClose: a ledger left between two
// committed blocks by an interrupted state sync executes nothing, so a later
// sync must fast-forward even to a target closer than FastForwardRounds.
func TestInterruptedStateSyncCompletesWhenClose(t *testing.T) {
	w := newWorld(t, 4, 60, 5)
	cfg := syncer.DefaultConfig()
	cfg.FastForwardRounds = 1000 // the whole chain is "close"
	c, m := w.client(t, cfg)
	// Half a state sync toward the commit of round 20 (QC on block 22).
	old := &w.nodes[21].QC.SignedLedgerInfo
	chunk, err := w.server.ledger.GetChunk(0, old.LedgerInfo.CommitInfo.Version, old.LedgerInfo.CommitInfo.Version/2)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ledger.ApplyChunk(chunk, old); err != nil {
		t.Fatal(err)
	}
	if c.ledger.Version() == c.ledger.Committed().Version {
		t.Fatal("the ledger is not between two committed blocks")
	}
	w.syncAll(t, c, m)
	if m.Stats().FastForwards != 1 {
		t.Fatalf("%d fast-forwards, want 1", m.Stats().FastForwards)
	}
}
