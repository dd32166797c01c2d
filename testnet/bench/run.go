package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"time"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/syncer"
)

// ErrMismatch is returned by Run when a node that caught up does not hold
// the servers' chain and ledger.
var ErrMismatch = errors.New("bench: synced state differs from the servers'")

// Result is the outcome of a run. It marshals to the JSON line `p2pnode
// bench sync` prints. Rates are per second of wall time; MB are 10^6
// bytes of encoded blocks (block mode), of transactions (state sync) or
// of the state's keys and values (snapshot).
type Result struct {
	Mode        Mode `json:"mode"`
	Blocks      int  `json:"blocks"`
	TxsPerBlock int  `json:"txs_per_block"`
	TxSize      int  `json:"tx_size"`
	// StateKeys echoes Config.StateKeys (0: a fresh key per transaction).
	StateKeys  int     `json:"state_keys"`
	Validators int     `json:"validators"`
	LatencyMS  float64 `json:"latency_ms"`
	Peers      int     `json:"peers"`
	// Link is the link model ("loopback" when none); LinkRTTMS and
	// LinkMbitPerS its round-trip time and bandwidth (10^6 bit/s).
	Link         string  `json:"link"`
	LinkRTTMS    float64 `json:"link_rtt_ms"`
	LinkMbitPerS float64 `json:"link_mbit_per_s"`
	// GoodputBytesPerS is, in block mode, the encoded blocks the sync
	// brought in per second of the whole sync (connections set up before,
	// not counted); GoodputFractionOfLink is that over the link's
	// bandwidth, 0 with no link model.
	GoodputBytesPerS      float64 `json:"goodput_bytes_per_s"`
	GoodputFractionOfLink float64 `json:"goodput_fraction_of_link"`
	// PenalisedPeers counts the serving peers, all honest, that the sync
	// scored with a timeout or an invalid answer (want 0); SlowTimeouts
	// counts the timeouts it took for slowness instead, unpenalised.
	PenalisedPeers int    `json:"penalised_peers"`
	SlowTimeouts   uint64 `json:"slow_timeouts"`

	// SeedBlocksMeasured is how many blocks the seed baseline caught up
	// (a prefix of the chain in block mode); 0 when it did not run.
	SeedBlocksMeasured int     `json:"seed_blocks_measured"`
	SeedBlocksPerS     float64 `json:"seed_blocks_per_s"`
	SyncBlocksPerS     float64 `json:"sync_blocks_per_s"`
	CeilingBlocksPerS  float64 `json:"ceiling_blocks_per_s"`
	SeedTxPerS         float64 `json:"seed_tx_per_s"`
	SyncTxPerS         float64 `json:"sync_tx_per_s"`
	CeilingTxPerS      float64 `json:"ceiling_tx_per_s"`
	// StateSyncTxPerS is, in state-sync mode, the transactions
	// fast-forwarded per second of the whole sync (3-chain fetch
	// included); 0 in block mode.
	StateSyncTxPerS float64 `json:"statesync_tx_per_s"`
	// StateValues is, in snapshot mode, the leaves of the state the sync
	// restored (the snapshot's, checked by the restored state root);
	// SnapshotValuesPerS is those per second of the whole sync (3-chain
	// fetch included) and CeilingValuesPerS per second of the ceiling's
	// restore with no network. HistoryTxs is the transactions of the
	// history the snapshot stands for: the version the sync reaches. StateMB
	// is the keys and values of the state.
	StateValues        uint64  `json:"state_values"`
	SnapshotValuesPerS float64 `json:"snapshot_values_per_s"`
	CeilingValuesPerS  float64 `json:"ceiling_values_per_s"`
	HistoryTxs         uint64  `json:"history_txs"`
	StateMB            float64 `json:"state_mb"`
	SyncMBPerS         float64 `json:"sync_mb_per_s"`
	// SpeedupVsSeed is the sync's rate over the seed's; FractionOfCeiling
	// the sync's rate over the ceiling's (blocks/s in block mode, tx/s in
	// state-sync mode, values/s in snapshot mode). 0 when the phase it
	// needs did not run.
	SpeedupVsSeed     float64 `json:"speedup_vs_seed"`
	FractionOfCeiling float64 `json:"fraction_of_ceiling"`
	// PeakRSSMB is the peak resident set (MiB) of the sync phase — the
	// syncing node and the serving hosts — when RSSScope is "sync"; of the
	// whole process when it is "process" (the peak could not be reset).
	PeakRSSMB float64 `json:"peak_rss_mb"`
	RSSScope  string  `json:"rss_scope"`
	// EndRSSAnonMB and EndRSSFileMB are the resident memory when the sync
	// ended (not peaks), anonymous and file-backed: the file-backed part is
	// the syncing node's bbolt pages it mapped and touched (Linux only).
	EndRSSAnonMB float64 `json:"end_rss_anon_mb"`
	EndRSSFileMB float64 `json:"end_rss_file_mb"`
	// CeilingPeakRSSMB is the peak resident set of the ceiling phase.
	CeilingPeakRSSMB float64 `json:"ceiling_peak_rss_mb"`
	// CPUS is the process's CPU time (user+system) during the sync,
	// serving hosts included.
	CPUS float64 `json:"cpu_s"`
	// CeilingCPUS is the process's CPU time during the ceiling. Unlike
	// the rates, CPU times hardly move with other load on the machine:
	// CeilingCPUS/CPUS is the fraction of ceiling by CPU.
	CeilingCPUS float64 `json:"ceiling_cpu_s"`
	SyncSeconds float64 `json:"sync_s"`
	// SettleSeconds is how long, after the sync, the node's state tree
	// took to follow its ledger and check the signed state root: the
	// stage a node runs after a sync (not in SyncSeconds).
	SettleSeconds float64 `json:"settle_s"`
	// SyncFetchedSeconds is, in block mode, when the sync had fetched and
	// verified every block (the rest of SyncSeconds inserts them), to 20 ms.
	SyncFetchedSeconds float64 `json:"sync_fetched_s"`
	SeedSeconds        float64 `json:"seed_s"`
	CeilingSeconds     float64 `json:"ceiling_s"`
	// SyncedTxs is how many transactions the sync brought into the ledger
	// (0 in snapshot mode, which replays none).
	SyncedTxs uint64  `json:"synced_txs"`
	ChainMB   float64 `json:"chain_mb"`
	// ChunkMisses counts chunk (or state) requests the servers could not
	// answer from their chunk (or snapshot) file: a client that asked off
	// the planned ranges.
	ChunkMisses int64 `json:"chunk_misses"`
	GOMAXPROCS  int   `json:"gomaxprocs"`
}

// Run builds (or reuses) the chain cfg describes, measures the ceiling,
// the seed baseline and the sync in that order, and returns the result.
// It writes human-readable progress to progress. Every temporary directory
// but the chain cache is removed before it returns; ctx cancels the run.
// Runs must not overlap in one process: each resets the process's peak
// resident set.
func Run(ctx context.Context, cfg Config, progress io.Writer) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if progress == nil {
		progress = io.Discard
	}
	if cfg.WorkDir == "" {
		cfg.WorkDir = os.TempDir()
	}
	res := &Result{
		Mode: cfg.Mode, Blocks: cfg.Blocks, TxsPerBlock: cfg.TxsPerBlock, TxSize: cfg.TxSize, StateKeys: cfg.StateKeys,
		Validators: cfg.Validators, LatencyMS: float64(cfg.Latency) / float64(time.Millisecond), Peers: cfg.Peers,
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		Link:       cfg.Link.String(), LinkRTTMS: float64(cfg.Link.RTT) / float64(time.Millisecond),
		LinkMbitPerS: float64(cfg.Link.BitsPerSecond) / 1e6,
	}
	if cfg.NoCache {
		dir, err := os.MkdirTemp(cfg.WorkDir, "p2pnode-bench-chain-*")
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		defer os.RemoveAll(dir)
		cfg.CacheDir = dir
	}
	c, err := openChain(ctx, &cfg, progress)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	res.ChainMB = round(float64(c.Bytes(1, c.Len()))/1e6, 2)

	var chunks *chunkFile
	if cfg.Mode == ModeStateSync {
		if chunks, err = openChunks(ctx, &cfg, c, syncer.DefaultConfig().ChunkTxs, progress); err != nil {
			return nil, err
		}
		defer chunks.Close()
	}
	var snap *snapshotFile
	if cfg.Mode == ModeSnapshot {
		if snap, err = openSnapshot(ctx, &cfg, c, syncer.DefaultConfig().StateChunkLeaves, progress); err != nil {
			return nil, err
		}
		defer snap.Close()
		res.StateMB = round(float64(snap.kvBytes)/1e6, 3)
	}
	if err := runPhases(ctx, &cfg, c, chunks, snap, res, progress); err != nil {
		return nil, err
	}
	return res, nil
}

func runPhases(ctx context.Context, cfg *Config, c *chainFile, chunks *chunkFile, snap *snapshotFile, res *Result, progress io.Writer) error {
	// Ceiling.
	var ceiling ledgerState
	if !cfg.SkipCeiling {
		resetPeakRSS()
		var took time.Duration
		var err error
		var values uint64
		ccpu0 := cpuTime()
		switch {
		case snap != nil:
			fmt.Fprintf(progress, "ceiling: verify and store the %d leaves of the snapshot with no network\n", snap.leaves)
			took, ceiling, values, err = ceilingSnapshot(ctx, c, snap, cfg.WorkDir)
		case chunks != nil:
			fmt.Fprintf(progress, "ceiling: verify and apply the chunks of %d transactions with no network\n", chunks.target)
			took, ceiling, err = ceilingStateSync(ctx, c, chunks, cfg.WorkDir)
		default:
			fmt.Fprintf(progress, "ceiling: verify, execute and store %d blocks with no network\n", c.Len())
			took, ceiling, err = ceilingBlocks(ctx, c, cfg.WorkDir)
		}
		if err != nil {
			return err
		}
		res.CeilingCPUS = round(seconds(cpuTime()-ccpu0), 2)
		res.CeilingSeconds = seconds(took)
		res.CeilingPeakRSSMB = round(peakRSSMB(), 1)
		switch {
		case snap != nil:
			if values != snap.leaves {
				return fmt.Errorf("%w: ceiling restored %d leaves, the snapshot has %d", ErrMismatch, values, snap.leaves)
			}
			res.CeilingValuesPerS = rate(values, took)
			fmt.Fprintf(progress, "ceiling: %v, %.0f values/s\n", took.Round(time.Millisecond), res.CeilingValuesPerS)
		case chunks != nil:
			res.CeilingTxPerS = rate(ceiling.Version, took)
			res.CeilingBlocksPerS = rate(ceiling.Committed.Round, took)
		default:
			res.CeilingBlocksPerS = rate(c.Len(), took)
			res.CeilingTxPerS = rate(ceiling.Version, took)
		}
		if snap == nil {
			fmt.Fprintf(progress, "ceiling: %v, %.0f blocks/s, %.0f tx/s\n", took.Round(time.Millisecond), res.CeilingBlocksPerS, res.CeilingTxPerS)
		}
	}

	srv, err := startServers(cfg, c, chunks, snap)
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintf(progress, "servers: %d hosts on %v, %v added per response\n", len(srv.hosts), cfg.Link, cfg.Latency)

	// Seed baseline: the seed has no snapshot sync to compare with.
	if cfg.SeedBlocks > 0 && cfg.Mode != ModeSnapshot {
		scfg, si, n, err := seedSetup(cfg, c)
		if err != nil {
			return err
		}
		resetPeakRSS()
		fmt.Fprintf(progress, "seed: catching up %d blocks with the seed's retrieval\n", n)
		r, err := syncOnce(ctx, c, srv, scfg, si, 0, cfg.Seed+0x5eed, cfg.WorkDir, "seed", progress)
		if err != nil {
			return err
		}
		if err := r.check(si); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		res.SeedBlocksMeasured = n
		res.SeedSeconds = seconds(r.took)
		res.SeedBlocksPerS = rate(n, r.took)
		res.SeedTxPerS = rate(r.state.Version, r.took)
		fmt.Fprintf(progress, "seed: %v, %.0f blocks/s, %.0f tx/s\n", r.took.Round(time.Millisecond), res.SeedBlocksPerS, res.SeedTxPerS)
	}

	// Sync.
	scfg := syncer.DefaultConfig()
	scfg.Seed = cfg.Seed
	if cfg.Mode == ModeStateSync {
		// Replay the ledger's transactions in chunks: a fresh ledger
		// would restore a snapshot instead, which this mode's servers
		// do not serve.
		scfg.FastForwardRounds = 0
		scfg.SnapshotSync = false
	} else if cfg.Mode == ModeSnapshot {
		// A fresh ledger on chain/store restores the snapshot.
		scfg.FastForwardRounds = 0
		scfg.SnapshotSync = true
	} else {
		scfg.FastForwardRounds = uint64(c.Len()) + 1
	}
	if cfg.MaxPendingBytes > 0 {
		scfg.MaxPendingBytes = cfg.MaxPendingBytes
	}
	si := &chain.SyncInfo{HighestCommitCert: c.meta.LastQC, HighestQC: c.meta.LastQC}
	scope := "process"
	if resetPeakRSS() {
		scope = "sync"
	}
	fmt.Fprintf(progress, "sync: catching up %d blocks\n", c.Len())
	cpu0 := cpuTime()
	var fetch uint64
	if cfg.Mode == ModeBlocks {
		fetch = uint64(c.Len())
	}
	r, err := syncOnce(ctx, c, srv, scfg, si, fetch, cfg.Seed+0x5c, cfg.WorkDir, "sync", progress)
	if err != nil {
		return err
	}
	res.CPUS = round(seconds(cpuTime()-cpu0), 2)
	res.PeakRSSMB = round(peakRSSMB(), 1)
	res.RSSScope = scope
	res.EndRSSAnonMB, res.EndRSSFileMB = round(r.anonMB, 1), round(r.fileMB, 1)
	if err := r.check(si); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	if cfg.Mode == ModeSnapshot {
		if err := r.checkStateTree(si); err != nil {
			return fmt.Errorf("sync: %w", err)
		}
		if r.stats.Snapshots != 1 || r.stats.TxsSynced != 0 {
			return fmt.Errorf("%w: the sync restored %d snapshots and replayed %d transactions, want 1 and 0",
				ErrMismatch, r.stats.Snapshots, r.stats.TxsSynced)
		}
	}
	if !cfg.SkipCeiling && r.state != ceiling {
		return fmt.Errorf("%w: synced ledger at version %d, ceiling's at %d", ErrMismatch, r.state.Version, ceiling.Version)
	}
	res.ChunkMisses = srv.misses.Load()
	res.PenalisedPeers, res.SlowTimeouts = r.penalised, r.slow
	res.SyncSeconds = seconds(r.took)
	res.SettleSeconds = seconds(r.settle)
	res.SyncFetchedSeconds = seconds(r.fetched)
	res.SyncedTxs = r.state.Version
	res.SyncBlocksPerS = rate(c.Len(), r.took)
	res.SyncTxPerS = rate(r.state.Version, r.took)
	switch cfg.Mode {
	case ModeSnapshot:
		res.SyncedTxs = r.stats.TxsSynced
		res.StateValues = snap.leaves
		res.HistoryTxs = r.state.Version
		res.SyncBlocksPerS, res.SyncTxPerS = 0, 0
		res.SnapshotValuesPerS = rate(res.StateValues, r.took)
		res.SyncMBPerS = round(float64(snap.kvBytes)/1e6/r.took.Seconds(), 2)
		res.FractionOfCeiling = ratio(res.SnapshotValuesPerS, res.CeilingValuesPerS)
		fmt.Fprintf(progress, "sync: %v, %d values of a history of %d txs, %.0f values/s, %.1f MB/s, peak RSS %.1f MiB, CPU %.1f s\n",
			r.took.Round(time.Millisecond), res.StateValues, res.HistoryTxs, res.SnapshotValuesPerS, res.SyncMBPerS, res.PeakRSSMB, res.CPUS)
		return nil
	case ModeStateSync:
		res.SyncBlocksPerS = rate(r.state.Committed.Round, r.took)
		res.StateSyncTxPerS = res.SyncTxPerS
		res.SyncMBPerS = round(float64(r.state.Version)*float64(cfg.TxSize)/1e6/r.took.Seconds(), 2)
		res.SpeedupVsSeed = ratio(res.SyncTxPerS, res.SeedTxPerS)
		res.FractionOfCeiling = ratio(res.SyncTxPerS, res.CeilingTxPerS)
	default:
		res.SyncMBPerS = round(float64(c.Bytes(1, c.Len()))/1e6/r.took.Seconds(), 2)
		res.GoodputBytesPerS = round(float64(c.Bytes(1, c.Len()))/r.took.Seconds(), 0)
		if !cfg.Link.IsZero() {
			res.GoodputFractionOfLink = ratio(res.GoodputBytesPerS, cfg.Link.BytesPerSecond())
		}
		res.SpeedupVsSeed = ratio(res.SyncBlocksPerS, res.SeedBlocksPerS)
		res.FractionOfCeiling = ratio(res.SyncBlocksPerS, res.CeilingBlocksPerS)
	}
	fmt.Fprintf(progress, "sync: %v, %.0f blocks/s, %.0f tx/s, %.1f MB/s, peak RSS %.1f MiB, CPU %.1f s\n",
		r.took.Round(time.Millisecond), res.SyncBlocksPerS, res.SyncTxPerS, res.SyncMBPerS, res.PeakRSSMB, res.CPUS)
	return nil
}

// seedSetup returns the seed baseline's syncer config and target: in
// block mode the QC of block min(Blocks, SeedBlocks), one block per
// request, no fast-forward; in state-sync mode the whole ledger, one chunk
// at a time.
func seedSetup(cfg *Config, c *chainFile) (syncer.Config, *chain.SyncInfo, int, error) {
	scfg := syncer.SeedConfig()
	scfg.Seed = cfg.Seed
	if cfg.Mode == ModeStateSync {
		return scfg, &chain.SyncInfo{HighestCommitCert: c.meta.LastQC, HighestQC: c.meta.LastQC}, c.Len(), nil
	}
	scfg.FastForwardRounds = uint64(c.Len()) + 1
	n := min(c.Len(), cfg.SeedBlocks)
	qc, err := c.QC(n)
	if err != nil {
		return scfg, nil, 0, err
	}
	return scfg, &chain.SyncInfo{HighestCommitCert: qc, HighestQC: qc}, n, nil
}

func seconds(d time.Duration) float64 { return round(d.Seconds(), 3) }

// rate returns n per second of d, rounded.
func rate[N int | uint64](n N, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return round(float64(n)/d.Seconds(), 1)
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return round(a/b, 3)
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}
