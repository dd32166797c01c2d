package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/blockstore"
	"github.com/p2pnode/p2pnode/consensus"
	"github.com/p2pnode/p2pnode/protocol"
	"github.com/p2pnode/p2pnode/syncer"
)

// StoreFile is the name of the store file in the node's home directory.
const StoreFile = "store.db"

// ErrRan is returned by Run when the node ran before: a Node runs once.
var ErrRan = errors.New("node: already ran")

// Node is a p2pnode peer: a libp2p host that follows one chain, serves it
// to peers, syncs from them and, if its key is a validator's, takes part
// in consensus. New builds it (the store is open and the host listens);
// Run runs it until its context ends and then releases everything. A Node
// that is never run must be released with Close. Its accessors are safe
// for concurrent use at any time.
type Node struct {
	cfg      Config
	log      *slog.Logger
	verifier *chain.Verifier
	opened   *blockstore.Opened
	mempool  *Mempool
	metrics  *metrics
	ops      *opsMetrics
	build    BuildInfo
	peers    peerRounds // the best round heard from peers
	gater    *Gater
	host     host.Host
	net      *Network
	mgr      *syncer.Manager
	engine   *consensus.Engine // nil on a full node
	apiLn    net.Listener      // nil without API, or once Run owns it
	apiAddr  net.Addr          // nil without API
	txs      *txBroadcaster
	handler  http.Handler // the HTTP API

	changed chan struct{} // the SyncInfo may have changed
	synced  chan struct{} // a sync ended: the state tree may lag (see settle)
	gossip  atomic.Pointer[gossip]
	worker  atomic.Pointer[syncWorker]
	ran     atomic.Bool
	closed  sync.Once
}

// New opens the node's store, rebuilds its chain state, starts its host
// listening and builds its components. Nothing talks to peers until Run.
func New(cfg Config) (n *Node, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n = &Node{
		cfg:     cfg,
		log:     log.With("logger", "p2pnode/node"),
		mempool: NewMempool(cfg.Mempool),
		metrics: newMetrics(),
		gater:   newGater(),
		changed: make(chan struct{}, 1),
		synced:  make(chan struct{}, 1),
		build:   ReadBuildInfo(cfg.Version),
	}
	n.ops = newOpsMetrics(n.metrics.reg, n.build)
	var cleanup []func()
	defer func() {
		if err != nil {
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
		}
	}()

	if n.verifier, err = chain.NewVerifier(cfg.Genesis); err != nil {
		return nil, fmt.Errorf("node: verifier: %w", err)
	}
	if err := os.MkdirAll(cfg.Home, 0o700); err != nil {
		return nil, fmt.Errorf("node: home: %w", err)
	}
	n.opened, err = blockstore.Open(filepath.Join(cfg.Home, StoreFile), cfg.Genesis, blockstore.Config{
		Logger:   log.With("logger", "p2pnode/store"),
		OnCommit: n.onCommit,
		// A new highest QC is news for peers even without a commit (after a
		// timeout, say): announce it at once, not at the next tick.
		OnQC: func(chain.QuorumCert) { n.signalChanged() },
	})
	if err != nil {
		return nil, fmt.Errorf("node: open store: %w", err)
	}
	cleanup = append(cleanup, func() { _ = n.opened.Disk.Close() })

	if n.host, err = newHost(&cfg, n.gater, n.metrics.reg); err != nil {
		return nil, err
	}
	cleanup = append(cleanup, func() { _ = n.host.Close() })
	n.net = NewNetwork(n.host, cfg.Genesis.ChainID)
	n.net.ops = n.ops

	scfg := cfg.Syncer
	scfg.Logger = log.With("logger", "p2pnode/syncer")
	scfg.Seed = cfg.Seed
	if n.mgr, err = syncer.New(n.opened.Blocks, n.net, n.verifier, n.host.ID(), scfg); err != nil {
		return nil, err
	}
	if cfg.Genesis.Validators.Contains(n.host.ID()) {
		if n.engine, err = n.newEngine(log); err != nil {
			return nil, err
		}
	}
	if cfg.APIAddr != "" {
		if n.apiLn, err = net.Listen("tcp", cfg.APIAddr); err != nil {
			return nil, fmt.Errorf("node: api listener: %w", err)
		}
		n.apiAddr = n.apiLn.Addr()
	}
	n.txs = newTxBroadcaster(log.With("logger", "p2pnode/mempool"))
	n.handler = newAPIHandler(n, n.txs, log.With("logger", "p2pnode/http"))
	n.metrics.reg.MustRegister(newNodeCollector(n))
	return n, nil
}

// Run runs the node until ctx ends: it joins the gossip topics, serves
// the stream protocols and the HTTP API, keeps its bootstrap peers
// connected, syncs when gossip shows it is behind, runs consensus on a
// validator and the load generator if configured. When ctx ends, or
// consensus fails, it stops everything in order — HTTP, sync worker and
// other workers, consensus, pubsub, host, store — and returns. Run may be
// called once; it returns consensus's error if that is why it stopped, nil
// otherwise.
func (n *Node) Run(ctx context.Context) error {
	if !n.ran.CompareAndSwap(false, true) {
		return ErrRan
	}
	defer n.Close()
	chainID := n.cfg.Genesis.ChainID
	log := n.cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	psCtx, stopPS := context.WithCancel(context.Background())
	defer stopPS()
	v := &validators{verifier: n.verifier, log: log.With("logger", "p2pnode/gossip"), result: n.metrics.validation}
	g, err := startGossip(psCtx, n.host, chainID, v, log.With("logger", "pubsub"))
	if err != nil {
		return err
	}
	n.gossip.Store(g)
	defer g.close()

	srv := &server{
		store:   n.opened.Blocks,
		genesis: n.cfg.Genesis.Block(),
		limiter: newRateLimiter(n.cfg.Limits.ServeRate, n.cfg.Limits.ServeBurst),
		bytes:   newRateLimiter(n.cfg.Limits.ServeBytesRate, n.cfg.Limits.ServeBytesBurst),
		limits:  n.cfg.Limits,
		log:     log.With("logger", "p2pnode/server"),
		served:  n.metrics.servedRequest,
	}
	n.host.SetStreamHandler(protocol.BlocksID(chainID), n.ops.serve(srv.handleBlocks))
	n.host.SetStreamHandler(protocol.CommittedID(chainID), n.ops.serve(srv.handleCommitted))
	n.host.SetStreamHandler(protocol.ChunksID(chainID), n.ops.serve(srv.handleChunks))
	n.host.SetStreamHandler(protocol.StateID(chainID), n.ops.serve(srv.handleState))
	defer n.host.RemoveStreamHandler(protocol.BlocksID(chainID))
	defer n.host.RemoveStreamHandler(protocol.CommittedID(chainID))
	defer n.host.RemoveStreamHandler(protocol.ChunksID(chainID))
	defer n.host.RemoveStreamHandler(protocol.StateID(chainID))

	// Consensus runs under its own context so that it stops after the
	// workers that feed it.
	consCtx, stopCons := context.WithCancel(context.Background())
	defer stopCons()
	consDone := make(chan error, 1)
	if n.engine != nil {
		n.host.SetStreamHandler(protocol.VoteID(chainID), n.ops.serve(n.handleVote))
		defer n.host.RemoveStreamHandler(protocol.VoteID(chainID))
		go func() { consDone <- n.engine.Run(consCtx) }()
	}

	wctx, stopWorkers := context.WithCancel(ctx)
	defer stopWorkers()
	var workers sync.WaitGroup
	worker := newSyncWorker(n.mgr, n.opened.Blocks, n.cfg.SyncTimeout, log.With("logger", "p2pnode/syncer"), n.syncDone)
	worker.ops = n.ops
	n.worker.Store(worker)
	workers.Go(func() { worker.run(wctx, n.opened.SyncTarget, n.waitForPeers) })
	boot := newBootstrapper(n.host, n.cfg.Bootstrap, n.cfg.ReconnectMin, n.cfg.ReconnectMax, n.log)
	n.gater.setOnHeal(boot.kick)
	workers.Go(func() { boot.run(wctx) })
	workers.Go(func() { n.announce(wctx, g) })
	workers.Go(func() { n.txs.run(wctx, g.tx) })
	workers.Go(func() { n.settle(wctx, log.With("logger", "p2pnode/node")) })
	if n.cfg.PruneWindow > 0 {
		workers.Go(func() { n.prune(wctx, log.With("logger", "p2pnode/node")) })
	}
	if n.cfg.TxRate > 0 {
		gen := newLoadGen(n.cfg.TxRate, n.cfg.TxSize, n.cfg.Seed, n.host.ID(), n.mempool, n.txs)
		workers.Go(func() { gen.run(wctx) })
	}
	for _, sub := range g.subs {
		workers.Go(func() { n.readTopic(wctx, sub) })
	}

	var api *apiServer
	if n.apiLn != nil {
		api = newAPIServer(n.handler, log.With("logger", "p2pnode/http"))
		ln := n.apiLn
		n.apiLn = nil // the server owns it now
		workers.Go(func() { api.serve(ln) })
	}

	n.log.Info("node running", "peer", n.host.ID(), "role", n.role(), "addrs", n.host.Addrs(),
		"committed_round", n.opened.Blocks.Root().Info.Round)
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-consDone:
		if runErr != nil {
			n.log.Error("consensus stopped", "err", runErr)
		}
	}

	// Shutdown, in order.
	if api != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		api.shutdown(sctx)
		cancel()
	}
	stopWorkers()
	workers.Wait()
	stopCons()
	if n.engine != nil && runErr == nil {
		runErr = <-consDone
	}
	g.close()
	stopPS()
	n.log.Info("node stopped", "peer", n.host.ID())
	return runErr
}

// Close releases the node: it closes the host and the store. Run calls it
// on its way out; call it only for a Node that never ran. It is idempotent.
func (n *Node) Close() error {
	var err error
	n.closed.Do(func() {
		if n.apiLn != nil {
			_ = n.apiLn.Close()
		}
		err = errors.Join(n.host.Close(), n.opened.Disk.Close())
	})
	return err
}

// ID returns the node's peer id.
func (n *Node) ID() peer.ID { return n.host.ID() }

// Addrs returns the addresses the host listens on.
func (n *Node) Addrs() []ma.Multiaddr { return n.host.Addrs() }

// AddrInfo returns the node's id and addresses, for other nodes'
// Bootstrap.
func (n *Node) AddrInfo() peer.AddrInfo { return peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()} }

// Gater returns the host's connection gater.
func (n *Node) Gater() *Gater { return n.gater }

// Mempool returns the node's mempool.
func (n *Node) Mempool() *Mempool { return n.mempool }

// Host returns the libp2p host.
func (n *Node) Host() host.Host { return n.host }

// Store returns the node's block store.
func (n *Node) Store() *blockstore.Store { return n.opened.Blocks }

// APIAddr returns the HTTP API's listen address, or nil without API.
func (n *Node) APIAddr() net.Addr { return n.apiAddr }

// Handler returns the HTTP API's handler (GET /status, GET /health, GET /metrics,
// GET /blocks, POST /tx), which Run serves on Config.APIAddr. Transactions
// posted are gossiped only while the node runs.
func (n *Node) Handler() http.Handler { return n.handler }

// IsValidator reports whether the node is a validator of its chain.
func (n *Node) IsValidator() bool { return n.engine != nil }

func (n *Node) role() string {
	if n.engine != nil {
		return "validator"
	}
	return "fullnode"
}

// onCommit is the block store's commit hook: it runs with the store
// locked, so it only drops the committed transactions from the mempool and
// signals the announcer.
func (n *Node) onCommit(committed []*chain.Block, _ chain.QuorumCert) {
	for _, b := range committed {
		n.mempool.Remove(b.Payload())
	}
	n.metrics.commits.Add(float64(len(committed)))
	n.signalChanged()
}

// signalChanged wakes the announcer; it never blocks.
func (n *Node) signalChanged() {
	select {
	case n.changed <- struct{}{}:
	default:
	}
}

// syncDone counts a finished sync and wakes the announcer.
func (n *Node) syncDone(err error) {
	n.metrics.syncs.WithLabelValues(syncResult(err)).Inc()
	n.signalChanged()
	select {
	case n.synced <- struct{}{}:
	default:
	}
}

// waitForPeers returns once the host has a connection, or ctx's error.
func (n *Node) waitForPeers(ctx context.Context) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for len(n.host.Network().Peers()) == 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// Build returns the build information the node reports.
func (n *Node) Build() BuildInfo { return n.build }

// SyncStats returns the sync manager's counters.
func (n *Node) SyncStats() syncer.Stats { return n.mgr.Stats() }
