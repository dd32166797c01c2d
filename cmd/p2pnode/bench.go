package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/pprof"

	"github.com/p2pnode/p2pnode/testnet/bench"
)

const benchUsage = `bench sync [--blocks N] [--txs-per-block T] [--tx-size B] [--validators V] [--latency D] [--link RTT/BW] [--peers P] [--mode blocks|statesync|snapshot] [--state-keys K] [--cpuprofile F]

Measures catch-up in one process. P serving nodes (real libp2p hosts on
loopback, each response delayed by --latency) hold a pre-built valid chain of
N blocks, and a fresh node with a real store catches up from them over the
block and chunk protocols. The same run measures the ceiling (verify, execute
and store the same blocks with no network) and the seed baseline (one block
per request, one request at a time, author first, over the same network).
--mode statesync measures a fast-forward state sync of the N x T
transactions instead. --mode snapshot measures a fast-forward that restores
the state at the committed version (its leaves in verified chunks) instead
of replaying the history; the result then reports state_values,
snapshot_values_per_s, history_txs and ceiling_values_per_s, and runs no
seed baseline. --state-keys K makes transaction i write key i mod K, so that
a long history overwrites a state of K keys (0: a fresh key per
transaction). --link RTT/BW (e.g. 150ms/100Mbit) puts every host on
a simulated packet network instead of loopback: QUIC over links of that
bandwidth up and down, each packet taking RTT/2 one way; the result then
reports goodput_bytes_per_s and goodput_fraction_of_link.

Progress goes to stderr; the last line on stdout is one JSON object with the
results (blocks, txs_per_block, tx_size, validators, latency_ms, peers,
seed_blocks_per_s, sync_blocks_per_s, ceiling_blocks_per_s, sync_tx_per_s,
sync_mb_per_s, speedup_vs_seed, fraction_of_ceiling, peak_rss_mb, cpu_s, ...).
Built chains are cached under the system's temporary directory.
`

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "sync" {
		fmt.Fprintf(stderr, "Usage: p2pnode %s\n", benchUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return nil
		}
		return errUsage
	}
	cfg := bench.DefaultConfig()
	fs := newFlagSet("bench sync", benchUsage, stderr)
	mode := fs.String("mode", string(cfg.Mode), "what to measure: blocks, statesync or snapshot")
	fs.IntVar(&cfg.Blocks, "blocks", cfg.Blocks, "length N of the chain the servers hold")
	fs.IntVar(&cfg.TxsPerBlock, "txs-per-block", cfg.TxsPerBlock, "transactions per block")
	fs.IntVar(&cfg.TxSize, "tx-size", cfg.TxSize, "size of each transaction in bytes")
	fs.IntVar(&cfg.StateKeys, "state-keys", cfg.StateKeys, "keys the transactions write, transaction i key i mod K (0: a fresh key each)")
	fs.IntVar(&cfg.Validators, "validators", cfg.Validators, "size of the validator set that signs the chain")
	fs.IntVar(&cfg.Peers, "peers", cfg.Peers, "number of serving hosts")
	fs.DurationVar(&cfg.Latency, "latency", cfg.Latency, "delay a server adds before each response")
	link := fs.String("link", "", "simulated link RTT/BANDWIDTH for every host, e.g. 150ms/100Mbit (bit, kbit, Mbit, Gbit); empty: loopback")
	fs.IntVar(&cfg.SeedBlocks, "seed-blocks", cfg.SeedBlocks, "blocks the seed baseline catches up (a prefix of the chain); 0 skips it")
	fs.BoolVar(&cfg.SkipCeiling, "skip-ceiling", cfg.SkipCeiling, "skip the no-network ceiling")
	fs.IntVar(&cfg.MaxPendingBytes, "max-pending-bytes", cfg.MaxPendingBytes, "replace the syncer's bound on blocks held while walking back (0: the default)")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the validators' keys and the transactions")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	cfg.Mode = bench.Mode(*mode)
	l, err := bench.ParseLink(*link)
	if err != nil {
		return usageError(fs, "%v", err)
	}
	cfg.Link = l
	if err := cfg.Validate(); err != nil {
		return usageError(fs, "%v", err)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	res, err := bench.Run(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	line, err := json.Marshal(res)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", line)
	return err
}
