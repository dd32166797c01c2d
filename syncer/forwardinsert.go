package syncer

import (
	"context"
	"slices"

	"github.com/p2pnode/p2pnode/chain"
)

// The forward fetch's two stages after verification: the executor, which
// runs complete windows in round order as they come, and the insert, one
// batch of executed windows at a time on a goroutine of its own. Each stage
// has its own goroutine, so the insert (the store's writes, the longest)
// never also hashes transactions.

// execJob is a window the executor is asked to run, or reports done.
type execJob struct {
	w      *fwdWindow
	gen    int
	blocks []*chain.Block
}

// insertReady starts inserting the first window if it is executed, with
// the executed windows that follow and link to it, up to maxInsertBatch
// blocks or maxInsertBytes of payload; the insert reports on
// f.insertDone. A first window that does not follow the local chain gets
// the gap filled by the walk first; if it still does not link it is asked
// again of another peer. It reports whether the windows changed. No insert
// may be in progress.
func (f *forward) insertReady(ctx context.Context) (bool, error) {
	head := f.windows[0]
	if !head.done || !head.executed {
		return false, nil
	}
	blocks := f.unknown(head.blocks)
	if h := f.held; h != nil && len(blocks) > 0 && blocks[0].ParentID() == h.ID && !f.m.store.BlockExists(h.ID) {
		blocks = append([]*chain.Block{h}, blocks...)
	}
	if len(blocks) > 0 && !f.m.store.BlockExists(blocks[0].ParentID()) {
		f.m.stats.forwardRelinks.Add(1)
		f.m.log.Debug("forward window does not follow: filling the gap", "round", blocks[0].Round(), "peer", head.peer)
		err := f.m.fetchQuorumCert(ctx, *blocks[0].QC(), head.peer, f.banned)
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		blocks = f.unknown(blocks)
		if err != nil || (len(blocks) > 0 && !f.m.store.BlockExists(blocks[0].ParentID())) {
			f.m.stats.forwardDropped.Add(1)
			f.m.log.Debug("forward window dropped", "round", head.from, "peer", head.peer, "err", err)
			f.restart(head, head.peer)
			return true, nil
		}
	}
	batch := slices.Clip(blocks)
	size := payloadSize(batch)
	n := 1
	closed := false // no later window can join the batch
	for ; n < len(f.windows) && f.windows[n].done && f.windows[n].executed; n++ {
		next := f.windows[n].blocks
		if len(next) > 0 && len(batch) > 0 && next[0].ParentID() != batch[len(batch)-1].ID {
			closed = true
			break
		}
		if len(next) > 0 && len(batch) == 0 {
			closed = true
			break // let the next window check its own link
		}
		nextSize := payloadSize(next)
		if len(batch)+len(next) > maxInsertBatch || size+nextSize > maxInsertBytes {
			closed = true
			break
		}
		batch = append(batch, next...)
		size += nextSize
	}
	// Wait for the windows still coming while the batch is small: every
	// insert is a store transaction with its fsyncs, whose cost depends on
	// the machine's disk, so that small batches make a sync's speed depend
	// on it far more than the insert's own work does. Inserts go ahead
	// once the batch is full, spans half the windows (so that the other
	// half stays in flight), or nothing else is coming.
	last := n >= len(f.windows) && f.next > f.target.Round
	if !closed && !last && f.running > 0 && n < max(1, f.m.cfg.ForwardWindows/2) &&
		len(batch) < maxInsertBatch && size < maxInsertBytes/2 {
		return false, nil
	}
	f.inserting = n
	batch, cert := f.certify(batch, n)
	go func() { f.insertDone <- f.insert(ctx, batch, cert) }()
	return true, nil
}

// certify returns the part of batch, the blocks of the first n windows,
// to insert now, and the QC that certifies its last block: the first
// block of the next window, when that one is here. Otherwise the last block
// is held for the next insert, so that no insert computes a state root of
// its own and the state tree follows in large updates. The target itself,
// which no fetched block certifies, is left to the walk that follows,
// with the blocks that certify it.
func (f *forward) certify(batch []*chain.Block, n int) ([]*chain.Block, *chain.QuorumCert) {
	if len(batch) == 0 {
		return batch, nil
	}
	last := batch[len(batch)-1]
	f.held = nil
	if n < len(f.windows) && f.windows[n].done {
		if next := f.windows[n].blocks; len(next) > 0 && next[0].ParentID() == last.ID {
			return batch, next[0].QC()
		}
	}
	// The held block's QC certifies the one before it.
	f.held = last
	return batch[:len(batch)-1], last.QC()
}

// unknown returns blocks without the leading ones at or below the root or
// already in the tree.
func (f *forward) unknown(blocks []*chain.Block) []*chain.Block {
	root := f.m.store.Root().Info.Round
	for len(blocks) > 0 && (blocks[0].Round() <= root || f.m.store.BlockExists(blocks[0].ID)) {
		blocks = blocks[1:]
	}
	return blocks
}

// insert locks the blocks, newest first as the walk does (so that two
// syncs never wait for each other in a cycle), and inserts those still
// unknown.
func (f *forward) insert(ctx context.Context, blocks []*chain.Block, cert *chain.QuorumCert) error {
	if len(blocks) == 0 {
		return nil
	}
	locks := f.m.locks.newSet()
	defer locks.releaseAll()
	for i := len(blocks) - 1; i >= 0; i-- {
		if err := locks.lock(ctx, blocks[i].ID); err != nil {
			return err
		}
	}
	return f.m.insert(f.unknown(blocks), cert)
}

// payloadSize returns the payload bytes of blocks.
func payloadSize(blocks []*chain.Block) int {
	n := 0
	for _, b := range blocks {
		n += b.PayloadSize()
	}
	return n
}

// feed sends the executor the complete windows not sent yet that follow,
// from the head, only complete windows; a full executor gets them at a
// later call.
func (f *forward) feed() {
	for _, w := range f.windows {
		if !w.done {
			return
		}
		if w.queued {
			continue
		}
		select {
		case f.toExecute <- execJob{w: w, gen: w.gen, blocks: w.blocks}:
			w.queued = true
		default:
			return
		}
	}
}

// executing reports whether the executor holds a window not reported yet.
func (f *forward) executing() bool {
	for _, w := range f.windows {
		if w.queued && !w.executed {
			return true
		}
	}
	return false
}

// execute runs for the length of a forward fetch, on a goroutine of its
// own: it executes the windows feed sends, in round order, under their
// block locks (so that no block is executed by two syncs), and reports each
// on f.executed; the insert then finds the results ready. So execution
// overlaps fetching, verification and the store's writes. A block that
// cannot be executed (a window that does not follow) is left to the insert,
// which fills the gap or executes what is missing and reports errors.
func (f *forward) execute(ctx context.Context) {
	l := f.m.store.Ledger()
	for j := range f.toExecute {
		locks := f.m.locks.newSet()
		locked := true
		for i := len(j.blocks) - 1; i >= 0 && locked; i-- {
			locked = locks.lock(ctx, j.blocks[i].ID) == nil
		}
		if locked {
			_ = l.ExecuteCertifiedChain(f.unknown(j.blocks))
		}
		locks.releaseAll()
		f.executed <- j
	}
}
