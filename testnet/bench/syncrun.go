package bench

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/node"
	"github.com/p2pnode/p2pnode/syncer"
)

// progressInterval is how often a sync reports its progress.
const progressInterval = 2 * time.Second

// fetchPollInterval is how often a sync checks whether every block has
// been fetched.
const fetchPollInterval = 20 * time.Millisecond

// syncRun is the outcome of one catch-up.
type syncRun struct {
	took time.Duration
	// settle is how long the state tree took to follow the ledger after
	// the sync (ledger.Settle), not in took.
	settle time.Duration
	// fetched is when the node had fetched the blocks asked for (0 if not
	// asked or not seen).
	fetched time.Duration
	stats   syncer.Stats
	// anonMB and fileMB are the process's resident memory when the sync
	// ended, anonymous and file-backed (the stores' mapped pages).
	anonMB, fileMB float64
	state          ledgerState
	// treeVersion and stateRoot are the version and root of the node's
	// durable state tree after the settle.
	treeVersion uint64
	stateRoot   chain.Hash
	highQC      chain.BlockInfo // the block the node's highest QC certifies
	// penalised counts the serving peers (all honest) that the sync scored
	// with a timeout or an invalid answer; slow sums the timeouts it
	// counted as slowness instead (no penalty).
	penalised int
	slow      uint64
}

// syncOnce catches a fresh node up to si from the servers: a store in a new
// directory under workDir (fsync on), a fresh libp2p host connected to
// every server, node.Network over it and a syncer.Manager with scfg; one
// SyncTo, the first server as the preferred peer. key is the node's
// identity. It returns how long SyncTo took and what the node then holds,
// and, if fetch is not 0, when the node had fetched fetch blocks.
func syncOnce(ctx context.Context, c *chainFile, srv *servers, scfg syncer.Config, si *chain.SyncInfo, fetch uint64,
	key uint64, workDir, label string, progress io.Writer) (*syncRun, error) {
	o, cleanup, err := openStore(c, workDir, label)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	h, err := srv.newHost(chaintest.Key(key, 0))
	if err != nil {
		return nil, err
	}
	defer h.Close()
	if err := connect(ctx, h, srv.AddrInfos()); err != nil {
		return nil, err
	}
	net := node.NewNetwork(h, c.v.Genesis.ChainID)
	if idle := 2*srv.latency + time.Second; idle > node.DefaultStreamIdleTimeout {
		net.SetIdleTimeout(idle) // the servers wait the latency before every answer
	}
	mgr, err := syncer.New(o.Blocks, net, c.v.Verifier, h.ID(), scfg)
	if err != nil {
		return nil, err
	}

	done := make(chan struct{})
	var wg sync.WaitGroup
	began := time.Now()
	var fetched time.Duration // written by the watcher, read after wg.Wait
	wg.Go(func() {
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		poll := time.NewTicker(fetchPollInterval)
		defer poll.Stop()
		for {
			select {
			case <-done:
				return
			case <-poll.C:
				if fetched == 0 && fetch > 0 && mgr.Stats().BlocksFetched >= fetch {
					fetched = time.Since(began)
				}
			case <-t.C:
				st := mgr.Stats()
				fmt.Fprintf(progress, "%s: %v: %d blocks fetched, ledger version %d, committed round %d\n",
					label, time.Since(began).Round(time.Second), st.BlocksFetched, o.Ledger.Version(), o.Ledger.Committed().Round)
			}
		}
	})
	err = mgr.SyncTo(ctx, si, srv.hosts[0].ID())
	took := time.Since(began)
	var settle time.Duration
	if err == nil {
		// The state tree follows the sync as a stage of its own, timed
		// apart; the peak memory includes it.
		settled := time.Now()
		if err = o.Ledger.Settle(ctx); err != nil {
			err = fmt.Errorf("state tree: %w", err)
		}
		settle = time.Since(settled)
	}
	var stateRoot chain.Hash
	if err == nil {
		if stateRoot, err = o.Ledger.StateRoot(); err != nil {
			err = fmt.Errorf("state root: %w", err)
		}
	}
	anon, file := residentMB()
	close(done)
	wg.Wait()
	if err != nil {
		return nil, fmt.Errorf("bench: %s: %w", label, err)
	}
	high := o.Blocks.HighestQC()
	r := &syncRun{took: took, settle: settle, fetched: fetched, stats: mgr.Stats(), anonMB: anon, fileMB: file, state: stateOf(o.Ledger),
		treeVersion: o.Ledger.TreeVersion(), stateRoot: stateRoot, highQC: high.CertifiedBlock()}
	for _, sh := range srv.hosts {
		p := sh.ID()
		if mgr.Scores().Count(p, syncer.OutcomeTimeout)+mgr.Scores().Count(p, syncer.OutcomeInvalid) > 0 {
			r.penalised++
		}
		r.slow += mgr.Flow(p).SlowTimeouts
	}
	return r, nil
}

// check fails unless the node holds si's highest QC and committed what
// si's commit cert commits.
func (r *syncRun) check(si *chain.SyncInfo) error {
	if want := si.HighestQC.CertifiedBlock(); r.highQC != want {
		return fmt.Errorf("%w: highest QC certifies round %d, want %d", ErrMismatch, r.highQC.Round, want.Round)
	}
	want := si.HighestCommitCert.CommitInfo()
	if got := r.state.Committed; got != want {
		return fmt.Errorf("%w: committed round %d version %d, want round %d version %d",
			ErrMismatch, got.Round, got.Version, want.Round, want.Version)
	}
	if r.state.Version != want.Version || r.state.Root != want.ExecutedStateID {
		return fmt.Errorf("%w: ledger version %d root %s, want version %d root %s",
			ErrMismatch, r.state.Version, r.state.Root.Short(), want.Version, want.ExecutedStateID.Short())
	}
	return nil
}

// checkStateTree fails unless the node's state tree is that of the
// version si's commit cert commits, with its state root.
func (r *syncRun) checkStateTree(si *chain.SyncInfo) error {
	want := si.HighestCommitCert.CommitInfo()
	if r.treeVersion != want.Version || r.stateRoot != want.StateRoot {
		return fmt.Errorf("%w: state tree at version %d root %s, want version %d root %s",
			ErrMismatch, r.treeVersion, r.stateRoot.Short(), want.Version, want.StateRoot.Short())
	}
	return nil
}
