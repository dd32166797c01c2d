package syncer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/blockstore"
	"github.com/p2pnode/p2pnode/chain/blocktree"
)

// Manager is the sync manager: given a SyncInfo ahead of the local state it
// catches the node up, as the seed's SyncManager — fast-forward to the
// committed 3-chain by state sync when needed, then fetch the highest QC's
// missing ancestors and insert them oldest first. It is safe for concurrent
// use: concurrent syncs over overlapping chains wait for each other block by
// block and never execute a block twice.
type Manager struct {
	store     *blockstore.Store
	net       Network
	verifier  *chain.Verifier
	retriever *Retriever
	scores    *Scores
	locks     *lockMap
	cfg       Config
	self      peer.ID
	log       *slog.Logger

	rngMu sync.Mutex
	rng   *rand.Rand

	running atomic.Int32
	stats   stats
}

// New returns a sync manager for the node self, which keeps its chain in
// store and reaches peers through net.
func New(store *blockstore.Store, net Network, verifier *chain.Verifier, self peer.ID, cfg Config) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	scores := NewScores(cfg.ScoreHalfLife)
	return &Manager{
		store:     store,
		net:       net,
		verifier:  verifier,
		retriever: NewRetriever(net, verifier, scores, self, cfg),
		scores:    scores,
		locks:     newLockMap(),
		cfg:       cfg,
		self:      self,
		log:       cfg.Logger,
		rng:       rand.New(rand.NewPCG(cfg.Seed, 0x73746174)),
	}, nil
}

// Scores returns the peers' scores.
func (m *Manager) Scores() *Scores { return m.scores }

// Syncing reports whether a sync is running.
func (m *Manager) Syncing() bool { return m.running.Load() > 0 }

// SyncTo catches the node up to si, which the peer from sent (the preferred
// peer to ask first): it fast-forwards if si's highest commit cert commits a
// block far ahead of the local root (ProcessHighestLedgerInfo), then fetches
// si's highest QC with its missing ancestors (FetchQuorumCert). si is
// verified first. ctx's deadline bounds the whole sync (the seed's round
// deadline). On error the local state is consistent and a later SyncTo
// resumes where this one stopped.
func (m *Manager) SyncTo(ctx context.Context, si *chain.SyncInfo, from peer.ID) error {
	m.running.Add(1)
	defer m.running.Add(-1)
	m.stats.runs.Add(1)
	err := m.syncTo(ctx, si, from)
	if err != nil && ctx.Err() == nil {
		m.stats.failures.Add(1)
	}
	return err
}

func (m *Manager) syncTo(ctx context.Context, si *chain.SyncInfo, from peer.ID) error {
	if err := m.verifier.VerifySyncInfo(si); err != nil {
		return fmt.Errorf("%w: sync info from %s: %w", ErrMisbehaved, from, err)
	}
	// A peer caught lying is not asked again during this sync.
	banned := newPeerSet()
	if err := m.processHighestLedgerInfo(ctx, &si.HighestCommitCert, from, banned); err != nil {
		return err
	}
	if err := m.forwardSync(ctx, &si.HighestCommitCert, from, banned); err != nil {
		return err
	}
	if err := m.fetchQuorumCert(ctx, si.HighestCommitCert, from, banned); err != nil {
		return err
	}
	// The sync deferred the blocks' state roots: the ledger's state tree
	// follows afterwards (ledger.Settle), as the node schedules it.
	return m.fetchQuorumCert(ctx, si.HighestQC, from, banned)
}

// FetchQuorumCert inserts qc, fetching first the block it certifies and
// every missing ancestor, walking back until a known block, then inserting
// them oldest first — for each block its QC, then the block, executed — and
// qc last. If the peers cannot supply the ancestors, qc is not added. qc
// must have been verified. With more than one block per request the walk is
// pipelined: the next request leaves while the current response is
// verified (see [walk]).
func (m *Manager) FetchQuorumCert(ctx context.Context, qc chain.QuorumCert, preferred peer.ID) error {
	return m.fetchQuorumCert(ctx, qc, preferred, newPeerSet())
}

// fetchQuorumCert is FetchQuorumCert skipping the peers of banned, where it
// adds those that misbehave.
func (m *Manager) fetchQuorumCert(ctx context.Context, qc chain.QuorumCert, preferred peer.ID, banned *peerSet) error {
	locks := m.locks.newSet()
	defer locks.releaseAll()
	w := &walk{m: m, ctx: ctx, preferred: preferred, banned: banned, pipelined: m.cfg.BlocksPerRequest > 1}
	defer w.stop()

	var pending []*chain.Block // newest first
	pendingBytes := 0
	next := &qc
	for {
		id := next.CertifiedBlock().ID
		if err := locks.lock(ctx, id); err != nil {
			return err
		}
		if m.store.BlockExists(id) {
			break
		}
		root := m.store.Root().Info
		if next.Round() <= root.Round {
			if next == &qc {
				// The node committed past qc's block while this call
				// waited for its lock (or before): nothing to insert.
				return nil
			}
			return fmt.Errorf("syncer: QC certifies block %s of round %d, at or below the root's round %d: %w",
				id.Short(), next.Round(), root.Round, blocktree.ErrBelowRoot)
		}
		blocks, err := w.retrieve(next)
		if err != nil {
			return err
		}
		m.stats.blocksFetched.Add(uint64(len(blocks)))
		known := false
		for i, b := range blocks {
			if i > 0 {
				if err := locks.lock(ctx, b.ID); err != nil {
					return err
				}
				if m.store.BlockExists(b.ID) {
					known = true
					break
				}
			}
			pending = append(pending, b)
			pendingBytes += b.PayloadSize()
		}
		if pendingBytes > m.cfg.MaxPendingBytes {
			return fmt.Errorf("%w: %d blocks pending (%d bytes)", ErrTooFarBehind, len(pending), pendingBytes)
		}
		if known {
			break
		}
		next = pending[len(pending)-1].QC()
	}
	slices.Reverse(pending)
	if err := m.insert(pending, &qc); err != nil {
		return err
	}
	return m.store.InsertQC(qc)
}

// insert inserts pending blocks, oldest first: in batches through
// InsertChain (one durable write per batch), or one QC and one block at a
// time as the seed does when BlocksPerRequest is 1.
//
// In batches, the next batch is executed on another goroutine while the
// store persists and commits the current one: the ledger keeps each
// block's execution result until it commits or drops the block, so
// InsertChain finds the results ready. A failed execution ahead is simply
// done again by InsertChain, which reports the error; results left over
// by a failed insert are dropped by the ledger's next commit past them.
//
// cert, if not nil, certifies the last pending block; each batch's last
// block is certified by the first of the next batch. So every block's
// state root is deferred, and the ledger's state tree follows in large
// updates (see ledger.ExecuteCertified).
func (m *Manager) insert(pending []*chain.Block, cert *chain.QuorumCert) error {
	if m.cfg.BlocksPerRequest == 1 {
		for _, b := range pending {
			if b.Round() <= m.store.Root().Info.Round {
				continue // committed meanwhile by a concurrent sync
			}
			if err := m.store.InsertQC(*b.QC()); err != nil {
				return err
			}
			if _, err := m.store.ExecuteAndInsertBlock(b); err != nil {
				return err
			}
		}
		return nil
	}
	const batch = 256
	l := m.store.Ledger()
	execute := func(blocks []*chain.Block) { _ = l.ExecuteCertifiedChain(blocks) }
	for len(pending) > 0 {
		n := min(batch, len(pending))
		execute(pending[:n]) // done ahead but for the first batch: lookups only
		var ahead sync.WaitGroup
		if rest := pending[n:]; len(rest) > 0 {
			ahead.Go(func() { execute(rest[:min(batch, len(rest))]) })
		}
		last := cert
		if n < len(pending) {
			last = pending[n].QC()
		}
		err := m.store.InsertChainCertified(pending[:n], last)
		ahead.Wait()
		if err != nil {
			return err
		}
		pending = pending[n:]
	}
	return nil
}

// ProcessHighestLedgerInfo fast-forwards the node when the block commitCert
// commits is unknown and ahead of the root (by more than
// Config.FastForwardRounds): it retrieves the committed 3-chain
// B0 ← B1 ← B2 that commitCert (C2) certifies, checks that B0 is the
// committed block, persists the 3-chain with its QCs before anything else,
// state-syncs the ledger to commitCert's ledger info in verified chunks, and
// rebuilds the tree with root (B0, C0, C2) and blocks [B1, B2]. commitCert
// must have been verified.
func (m *Manager) ProcessHighestLedgerInfo(ctx context.Context, commitCert *chain.QuorumCert, from peer.ID) error {
	return m.processHighestLedgerInfo(ctx, commitCert, from, newPeerSet())
}

// processHighestLedgerInfo is ProcessHighestLedgerInfo skipping the peers
// of banned, where it adds those that misbehave.
func (m *Manager) processHighestLedgerInfo(ctx context.Context, commitCert *chain.QuorumCert, from peer.ID, banned *peerSet) error {
	if !m.store.NeedSync(commitCert) {
		return nil
	}
	root := m.store.Root().Info
	commit := commitCert.CommitInfo()
	l := m.store.Ledger()
	// A ledger left between two committed blocks by an unfinished state sync
	// executes nothing: only another fast-forward can complete it, however
	// close the target.
	midSync := l.Version() != l.Committed().Version
	if m.cfg.FastForwardRounds > 0 && commit.Round <= root.Round+m.cfg.FastForwardRounds && !midSync {
		return nil // close enough: FetchQuorumCert fetches the blocks
	}
	m.log.Info("fast-forward started", "peer", from, "commit_block_id", commit.ID.Short(),
		"commit_round", commit.Round, "root_round", root.Round, "target_version", commit.Version)
	chain3, err := m.fetchChain(ctx, commitCert, 3, from, banned)
	if err != nil {
		return err
	}
	if chain3[2].ID != commit.ID {
		return fmt.Errorf("%w: the 3-chain of %s ends at %s, not at the committed block %s",
			ErrMisbehaved, commitCert.CertifiedBlock().ID.Short(), chain3[2].ID.Short(), commit.ID.Short())
	}
	blocks := [3]*chain.Block{chain3[2], chain3[1], chain3[0]}
	qcs := [3]chain.QuorumCert{*chain3[1].QC(), *chain3[0].QC(), *commitCert}
	if err := m.store.SaveTree(blocks[:], qcs[:]); err != nil {
		return err
	}
	return m.fastForward(ctx, blocks, qcs, from, banned)
}

// ResumeFastForward completes a fast-forward that a stopped node persisted
// (B0, B1, B2 with C0, C1, C2) but did not finish: it state-syncs the
// ledger from where it stopped, then rebuilds the tree. The values come from
// the node's own store, which verified them before persisting them.
func (m *Manager) ResumeFastForward(ctx context.Context, blocks [3]*chain.Block, qcs [3]chain.QuorumCert) error {
	m.running.Add(1)
	defer m.running.Add(-1)
	m.log.Info("resuming fast-forward", "commit_block_id", blocks[0].ID.Short(), "commit_round", blocks[0].Round(),
		"version", m.store.Ledger().Version(), "target_version", qcs[2].CommitInfo().Version)
	return m.fastForward(ctx, blocks, qcs, "", newPeerSet())
}

func (m *Manager) fastForward(ctx context.Context, blocks [3]*chain.Block, qcs [3]chain.QuorumCert, from peer.ID, banned *peerSet) error {
	m.stats.fastForwards.Add(1)
	target := &qcs[2].SignedLedgerInfo
	l := m.store.Ledger()
	startVersion := l.Version()
	began := time.Now()
	peers := m.stateSyncPeers(from, &qcs[2], banned)
	snapshot := m.cfg.SnapshotSync && l.CanRestoreSnapshot() && target.LedgerInfo.CommitInfo.Version > 0
	ls := ledgerSync{
		net: m.net, scores: m.scores, flows: m.retriever.flows, cfg: m.cfg, log: m.log,
		target: target, peers: peers, banned: banned,
	}
	if snapshot {
		ss := &snapshotSync{ledgerSync: ls}
		err := ss.run(ctx, l)
		switch {
		case err == nil:
		case errors.Is(err, ErrAllPeersFailed) && !ss.began:
			// No peer keeps the state tree of the target (it is old: a
			// resumed fast-forward's): replay its transactions instead.
			m.log.Info("no peer serves the snapshot, replaying", "target_version", target.LedgerInfo.CommitInfo.Version, "err", err)
			snapshot = false
		default:
			return fmt.Errorf("syncer: snapshot sync to version %d: %w", target.LedgerInfo.CommitInfo.Version, err)
		}
	}
	if !snapshot {
		ss := &stateSync{ledgerSync: ls}
		if err := ss.run(ctx, l); err != nil {
			return fmt.Errorf("syncer: state sync to version %d: %w", target.LedgerInfo.CommitInfo.Version, err)
		}
	}
	took := time.Since(began)
	synced := l.Version() - startVersion
	if snapshot {
		m.stats.snapshots.Add(1)
	} else {
		m.stats.txsSynced.Add(synced)
	}
	m.stats.stateSyncNanos.Add(uint64(took))
	root := blocktree.Root{Block: blocks[0], Info: qcs[0].CertifiedBlock(), QC: qcs[0], LedgerInfo: qcs[2]}
	if err := m.store.Rebuild(root, blocks[1:], qcs[1:]); err != nil {
		return err
	}
	rate := 0.0
	if took > 0 {
		rate = float64(synced) / took.Seconds()
	}
	m.log.Info("fast-forward done", "root_round", blocks[0].Round(), "version", l.Version(),
		"txs", synced, "took", took.Round(time.Millisecond), "tx_per_s", int64(rate))
	return nil
}

// fetchChain returns exactly n blocks ending with the block qc certifies,
// newest first, fetched in as many requests as the servers' byte limits
// need.
func (m *Manager) fetchChain(ctx context.Context, qc *chain.QuorumCert, n int, from peer.ID, banned *peerSet) ([]*chain.Block, error) {
	var out []*chain.Block
	next := qc
	for len(out) < n {
		blocks, err := m.retriever.RetrieveBlocksForQC(ctx, next, n-len(out), chain.Hash{}, from, banned)
		if err != nil {
			return nil, err
		}
		m.stats.blocksFetched.Add(uint64(len(blocks)))
		out = append(out, blocks...)
		next = out[len(out)-1].QC()
	}
	return out, nil
}

// stateSyncPeers returns the peers to state-sync from, best first: the
// preferred peer, the commit cert's signers and the connected peers.
func (m *Manager) stateSyncPeers(preferred peer.ID, commitCert *chain.QuorumCert, banned *peerSet) []peer.ID {
	m.rngMu.Lock()
	defer m.rngMu.Unlock()
	all := append(commitCert.Signers(), m.net.Peers()...)
	ranked := m.scores.Rank(all, m.rng)
	seen := map[peer.ID]bool{m.self: true, "": true}
	var out []peer.ID
	for _, p := range append([]peer.ID{preferred}, ranked...) {
		if !seen[p] && !banned.has(p) {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// IsPeerFault reports whether err, returned by a sync, blames a peer
// rather than the local node or the deadline.
func IsPeerFault(err error) bool { return errors.Is(err, ErrMisbehaved) }
