package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/blockstore"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/protocol"
)

// ceilingBatch is how many blocks the ceiling verifies and inserts at a
// time, as the syncer's insert does.
const ceilingBatch = 256

// ledgerState is what a run compares between ledgers.
type ledgerState struct {
	Committed chain.BlockInfo
	Version   uint64
	Root      chain.Hash
}

func stateOf(l *ledger.Ledger) ledgerState {
	return ledgerState{Committed: l.Committed(), Version: l.Version(), Root: l.Root()}
}

// openStore opens a fresh store in a new directory under workDir; cleanup
// closes it and removes the directory.
func openStore(c *chainFile, workDir, name string) (*blockstore.Opened, func() error, error) {
	dir, err := os.MkdirTemp(workDir, "p2pnode-bench-"+name+"-*")
	if err != nil {
		return nil, nil, fmt.Errorf("bench: %w", err)
	}
	o, err := blockstore.Open(filepath.Join(dir, "store.db"), c.v.Genesis, blockstore.Config{})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, nil, err
	}
	return o, func() error { return errors.Join(o.Disk.Close(), os.RemoveAll(dir)) }, nil
}

// ceilingBlocks verifies, executes and stores the whole chain on a fresh
// store with no network, in three stages that overlap as the syncer's do:
// read, decode and verify a batch; execute the next batch ahead; insert
// (persist and commit) the current one.
func ceilingBlocks(ctx context.Context, c *chainFile, workDir string) (time.Duration, ledgerState, error) {
	o, cleanup, err := openStore(c, workDir, "ceiling")
	if err != nil {
		return 0, ledgerState{}, err
	}
	defer cleanup()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()

	began := time.Now()
	verified := make(chan []*chain.Block, 1)
	executed := make(chan []*chain.Block, 1)
	var wg sync.WaitGroup
	var readErr error
	wg.Go(func() {
		defer close(verified)
		for from := 1; from <= c.Len(); from += ceilingBatch {
			blocks, err := c.Blocks(from, min(from+ceilingBatch-1, c.Len()))
			if err == nil {
				err = verifyChain(c.v.Verifier, blocks)
			}
			if err != nil {
				readErr = err
				return
			}
			select {
			case verified <- blocks:
			case <-cctx.Done():
				return
			}
		}
	})
	l := o.Ledger
	wg.Go(func() {
		defer close(executed)
		for blocks := range verified {
			_ = l.ExecuteCertifiedChain(blocks) // InsertChain executes again and reports errors
			select {
			case executed <- blocks:
			case <-cctx.Done():
				return
			}
		}
	})
	// Each batch is inserted once the next arrives, with the QC of the
	// next one's first block that certifies its last, as a sync does; as
	// after a sync, the state tree follows apart (not measured here).
	var prev []*chain.Block
	for blocks := range executed {
		if prev != nil {
			if err = o.Blocks.InsertChainCertified(prev, blocks[0].QC()); err != nil {
				break
			}
		}
		prev = blocks
	}
	if err == nil && prev != nil {
		err = o.Blocks.InsertChainCertified(prev, &c.meta.LastQC)
	}
	cancel()
	wg.Wait()
	if err == nil {
		err = errors.Join(readErr, ctx.Err())
	}
	if err == nil {
		err = o.Blocks.InsertQC(c.meta.LastQC)
	}

	took := time.Since(began)
	if err != nil {
		return 0, ledgerState{}, fmt.Errorf("bench: ceiling: %w", err)
	}
	return took, stateOf(l), nil
}

// verifyChain verifies blocks as a syncing node verifies a committed
// range: the parent links, then every block, in contiguous parts spread
// over GOMAXPROCS goroutines, each part as chain's VerifyChain checks a
// chain, its signatures in one batch.
func verifyChain(v *chain.Verifier, blocks []*chain.Block) error {
	for i := 1; i < len(blocks); i++ {
		if err := chain.VerifyParent(blocks[i], blocks[i-1]); err != nil {
			return err
		}
	}
	workers := max(1, min(runtime.GOMAXPROCS(0), len(blocks)/8))
	size := (len(blocks) + workers - 1) / workers
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := min(w*size, len(blocks)), min((w+1)*size, len(blocks))
		wg.Go(func() {
			if i, err := v.VerifyChain(blocks[lo:hi]); err != nil {
				errs[w] = fmt.Errorf("block %d: %w", lo+i, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ceilingStateSync verifies and applies every chunk of the ledger on a
// fresh store with no network: decoded and verified on one goroutine (as
// the syncer checks chunks on arrival), applied in order on another.
func ceilingStateSync(ctx context.Context, c *chainFile, chunks *chunkFile, workDir string) (time.Duration, ledgerState, error) {
	o, cleanup, err := openStore(c, workDir, "ceiling")
	if err != nil {
		return 0, ledgerState{}, err
	}
	defer cleanup()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()

	target := &c.meta.LastQC.SignedLedgerInfo
	info := target.LedgerInfo.CommitInfo
	began := time.Now()
	checked := make(chan *ledger.Chunk, 2)
	var wg sync.WaitGroup
	var readErr error
	wg.Go(func() {
		defer close(checked)
		for _, k := range chunks.order {
			chunk, err := chunks.decode(k)
			if err == nil {
				err = ledger.VerifyChunk(chunk, chunk.Left, chunk.StartVersion, info)
			}
			if err != nil {
				readErr = err
				return
			}
			select {
			case checked <- chunk:
			case <-cctx.Done():
				return
			}
		}
	})
	for chunk := range checked {
		if err = o.Ledger.ApplyChunk(chunk, target); err != nil {
			break
		}
	}
	cancel()
	wg.Wait()
	if err == nil {
		err = errors.Join(readErr, ctx.Err())
	}
	took := time.Since(began)
	if err != nil {
		return 0, ledgerState{}, fmt.Errorf("bench: ceiling: %w", err)
	}
	return took, stateOf(o.Ledger), nil
}

// ceilingSnapshot restores the snapshot on a fresh store with no network,
// as a syncing node does: each chunk decoded on one goroutine (the
// client's stream), verified and stored with the restore's position on
// another (ledger.SnapshotRestore.Add), then the restore finished. It
// returns how long that took, what the ledger then holds, and the leaves
// restored.
func ceilingSnapshot(ctx context.Context, c *chainFile, snap *snapshotFile, workDir string) (time.Duration, ledgerState, uint64, error) {
	o, cleanup, err := openStore(c, workDir, "ceiling")
	if err != nil {
		return 0, ledgerState{}, 0, err
	}
	defer cleanup()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()

	target := &c.meta.LastQC.SignedLedgerInfo
	began := time.Now()
	decoded := make(chan *protocol.StateResponse, 1)
	var wg sync.WaitGroup
	var readErr error
	wg.Go(func() {
		defer close(decoded)
		for i := range snap.chunks {
			resp, err := snap.decode(i)
			if err != nil {
				readErr = err
				return
			}
			select {
			case decoded <- resp:
			case <-cctx.Done():
				return
			}
		}
	})
	var r *ledger.SnapshotRestore
	for resp := range decoded {
		if r == nil {
			if r, err = o.Ledger.RestoreSnapshot(target, resp.Frontier); err != nil {
				break
			}
		}
		if err = r.Add(resp.Chunk); err != nil {
			break
		}
	}
	cancel()
	wg.Wait()
	if err == nil {
		err = errors.Join(readErr, ctx.Err())
	}
	if err == nil && r == nil {
		err = errors.New("no chunk")
	}
	if err == nil {
		err = r.Finish()
	}
	took := time.Since(began)
	if err != nil {
		return 0, ledgerState{}, 0, fmt.Errorf("bench: ceiling: %w", err)
	}
	return took, stateOf(o.Ledger), r.Leaves(), nil
}
