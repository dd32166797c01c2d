package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/protocol"
	"github.com/p2pnode/p2pnode/syncer"
)

// tinyConfig is a run that takes a few seconds.
func tinyConfig(t *testing.T, mode Mode) Config {
	cfg := DefaultConfig()
	cfg.Mode = mode
	cfg.Blocks = 200
	cfg.TxsPerBlock = 10
	cfg.TxSize = 100
	cfg.Peers = 2
	cfg.SeedBlocks = 50
	cfg.Latency = time.Millisecond
	cfg.CacheDir = t.TempDir()
	cfg.WorkDir = t.TempDir()
	return cfg
}

// wantFields are the keys every result line carries.
var wantFields = []string{
	"mode", "blocks", "txs_per_block", "tx_size", "validators", "latency_ms", "peers",
	"seed_blocks_per_s", "sync_blocks_per_s", "ceiling_blocks_per_s", "sync_tx_per_s", "sync_mb_per_s",
	"speedup_vs_seed", "fraction_of_ceiling", "peak_rss_mb", "cpu_s", "seed_blocks_measured",
	"statesync_tx_per_s", "link", "goodput_bytes_per_s", "goodput_fraction_of_link",
	"penalised_peers", "slow_timeouts",
	"state_keys", "state_values", "snapshot_values_per_s", "ceiling_values_per_s", "history_txs",
}

func checkJSON(t *testing.T, res *Result) map[string]any {
	t.Helper()
	line, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range wantFields {
		if _, ok := m[k]; !ok {
			t.Errorf("result has no %q: %s", k, line)
		}
	}
	return m
}

func TestRunBlocks(t *testing.T) {
	cfg := tinyConfig(t, ModeBlocks)
	res, err := Run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err) // Run fails with ErrMismatch if the synced ledger differs
	}
	checkJSON(t, res)
	// The last QC commits the block two below the last.
	if want := uint64(cfg.Blocks-2) * uint64(cfg.TxsPerBlock); res.SyncedTxs != want {
		t.Errorf("synced %d txs, want %d", res.SyncedTxs, want)
	}
	if res.SeedBlocksMeasured != cfg.SeedBlocks {
		t.Errorf("seed measured %d blocks, want %d", res.SeedBlocksMeasured, cfg.SeedBlocks)
	}
	for name, v := range map[string]float64{
		"seed_blocks_per_s": res.SeedBlocksPerS, "sync_blocks_per_s": res.SyncBlocksPerS,
		"ceiling_blocks_per_s": res.CeilingBlocksPerS, "speedup_vs_seed": res.SpeedupVsSeed,
		"fraction_of_ceiling": res.FractionOfCeiling, "sync_mb_per_s": res.SyncMBPerS, "cpu_s": res.CPUS,
	} {
		if v <= 0 {
			t.Errorf("%s = %v, want > 0", name, v)
		}
	}
	if res.LatencyMS != 1 || res.Peers != 2 || res.Blocks != 200 {
		t.Errorf("result echoes latency %v ms, %d peers, %d blocks; want 1, 2, 200", res.LatencyMS, res.Peers, res.Blocks)
	}

	// A second run finds the chain in the cache and measures the same state.
	again, err := Run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if again.SyncedTxs != res.SyncedTxs || again.ChainMB != res.ChainMB {
		t.Errorf("second run synced %d txs of a %v MB chain, first %d of %v MB", again.SyncedTxs, again.ChainMB, res.SyncedTxs, res.ChainMB)
	}
}

func TestRunStateSync(t *testing.T) {
	cfg := tinyConfig(t, ModeStateSync)
	cfg.TxsPerBlock = 40 // 7,920 transactions: several chunks
	res, err := Run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	checkJSON(t, res)
	if want := uint64(cfg.Blocks-2) * uint64(cfg.TxsPerBlock); res.SyncedTxs != want {
		t.Errorf("synced %d txs, want %d", res.SyncedTxs, want)
	}
	if res.ChunkMisses != 0 {
		t.Errorf("%d chunk requests missed the chunk file", res.ChunkMisses)
	}
	for name, v := range map[string]float64{
		"statesync_tx_per_s": res.StateSyncTxPerS, "ceiling_tx_per_s": res.CeilingTxPerS,
		"seed_tx_per_s": res.SeedTxPerS, "fraction_of_ceiling": res.FractionOfCeiling,
	} {
		if v <= 0 {
			t.Errorf("%s = %v, want > 0", name, v)
		}
	}
}

func TestRunSnapshot(t *testing.T) {
	for _, tt := range []struct {
		name                      string
		blocks, txs, size, keys   int
		wantValues, wantSnapshots int
	}{
		// One chunk: 380 transactions over 50 keys.
		{"small", 40, 10, 100, 50, 50, 1},
		// Three chunks of the syncer's 4,096 leaves: 9,500 transactions
		// over 9,000 keys.
		{"chunks", 40, 250, 60, 9000, 9000, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tinyConfig(t, ModeSnapshot)
			cfg.Blocks, cfg.TxsPerBlock, cfg.TxSize, cfg.StateKeys = tt.blocks, tt.txs, tt.size, tt.keys
			res, err := Run(context.Background(), cfg, io.Discard)
			if err != nil {
				t.Fatal(err) // Run fails with ErrMismatch if the restored state differs
			}
			checkJSON(t, res)
			history := uint64(cfg.Blocks-2) * uint64(cfg.TxsPerBlock)
			if res.StateValues != uint64(tt.wantValues) || res.HistoryTxs != history || res.SyncedTxs != 0 {
				t.Errorf("restored %d values of a history of %d txs, replayed %d; want %d of %d, 0",
					res.StateValues, res.HistoryTxs, res.SyncedTxs, tt.wantValues, history)
			}
			if res.ChunkMisses != 0 || res.PenalisedPeers != 0 {
				t.Errorf("%d state requests missed the snapshot file, %d peers penalised", res.ChunkMisses, res.PenalisedPeers)
			}
			if res.SeedBlocksMeasured != 0 {
				t.Errorf("seed measured %d blocks in snapshot mode", res.SeedBlocksMeasured)
			}
			for name, v := range map[string]float64{
				"snapshot_values_per_s": res.SnapshotValuesPerS, "ceiling_values_per_s": res.CeilingValuesPerS,
				"fraction_of_ceiling": res.FractionOfCeiling, "sync_s": res.SyncSeconds, "state_mb": res.StateMB,
			} {
				if v <= 0 {
					t.Errorf("%s = %v, want > 0", name, v)
				}
			}
			s, err := loadSnapshot(snapshotDir(&cfg, syncer.DefaultConfig().StateChunkLeaves), syncer.DefaultConfig().StateChunkLeaves)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if len(s.chunks) != tt.wantSnapshots {
				t.Errorf("snapshot of %d chunks, want %d", len(s.chunks), tt.wantSnapshots)
			}
		})
	}
}

func TestRunCancelled(t *testing.T) {
	cfg := tinyConfig(t, ModeBlocks)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, cfg, io.Discard); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run with a cancelled context: %v, want context.Canceled", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name    string
		edit    func(*Config)
		wantErr error
	}{
		{"default", func(*Config) {}, nil},
		{"statesync", func(c *Config) { c.Mode = ModeStateSync }, nil},
		{"snapshot", func(c *Config) { c.Mode, c.StateKeys = ModeSnapshot, 1000 }, nil},
		{"snapshot of fresh keys", func(c *Config) { c.Mode = ModeSnapshot }, nil},
		{"negative state keys", func(c *Config) { c.StateKeys = -1 }, ErrConfig},
		{"state keys without key/value txs", func(c *Config) { c.StateKeys, c.TxSize = 10, 10 }, ErrConfig},
		{"snapshot of no state", func(c *Config) { c.Mode, c.TxsPerBlock = ModeSnapshot, 0 }, ErrConfig},
		{"no seed", func(c *Config) { c.SeedBlocks = 0 }, nil},
		{"bad mode", func(c *Config) { c.Mode = "fast" }, ErrConfig},
		{"too few blocks", func(c *Config) { c.Blocks = 3 }, ErrConfig},
		{"empty txs", func(c *Config) { c.TxSize = 0 }, ErrConfig},
		{"payload too large", func(c *Config) { c.TxsPerBlock, c.TxSize = 10_000, 1<<10 }, ErrConfig},
		{"no peers", func(c *Config) { c.Peers = 0 }, ErrConfig},
		{"negative latency", func(c *Config) { c.Latency = -time.Millisecond }, ErrConfig},
		{"seed prefix too short", func(c *Config) { c.SeedBlocks = 2 }, ErrConfig},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.edit(&cfg)
			if err := cfg.Validate(); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Validate() = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// testChain opens a small chain file.
func testChain(t testing.TB, blocks, txs, txSize int) *chainFile {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Blocks, cfg.TxsPerBlock, cfg.TxSize = blocks, txs, txSize
	switch tt := t.(type) {
	case *testing.T:
		cfg.CacheDir = tt.TempDir()
	case *testing.F:
		cfg.CacheDir = tt.TempDir()
	}
	c, err := openChain(context.Background(), &cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// source serves c's blocks as a store holding the chain would.
func source(t testing.TB, c *chainFile) syncer.BlockSource {
	t.Helper()
	blocks, err := c.Blocks(1, c.Len())
	if err != nil {
		t.Fatal(err)
	}
	byID := map[chain.Hash]*chain.Block{c.v.Genesis.Block().ID: c.v.Genesis.Block()}
	for _, b := range blocks {
		byID[b.ID] = b
	}
	return syncer.BlockSourceFunc(func(id chain.Hash) (*chain.Block, bool) {
		b, ok := byID[id]
		return b, ok
	})
}

// bodyOf strips a frame's length prefix, checking it.
func bodyOf(t testing.TB, frame []byte) []byte {
	t.Helper()
	body, err := protocol.ReadFrame(bytes.NewReader(frame), protocol.MaxBlockResponseSize)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func TestBlockResponseMatchesServeBlocks(t *testing.T) {
	c := testChain(t, 40, 3, 50)
	src := source(t, c)
	genesis := c.v.Genesis.Block().ID
	for _, tt := range []struct {
		name string
		req  protocol.BlockRequest
	}{
		{"one block", protocol.BlockRequest{BlockID: c.ids[39], Count: 1}},
		{"to the target", protocol.BlockRequest{BlockID: c.ids[39], Count: 64, Target: c.ids[9]}},
		{"to genesis as target", protocol.BlockRequest{BlockID: c.ids[20], Count: 64, Target: genesis}},
		{"count before target", protocol.BlockRequest{BlockID: c.ids[30], Count: 5, Target: genesis}},
		{"through genesis", protocol.BlockRequest{BlockID: c.ids[5], Count: 64}},
		{"genesis", protocol.BlockRequest{BlockID: genesis, Count: 3}},
		{"unknown", protocol.BlockRequest{BlockID: chain.Hash{1}, Count: 3}},
		{"bad count", protocol.BlockRequest{BlockID: c.ids[3], Count: 0}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			frame, err := c.blockResponse(&tt.req, protocol.MaxBlockResponseSize-16)
			if err != nil {
				t.Fatal(err)
			}
			want, err := chain.Encode(syncer.ServeBlocks(src, &tt.req, protocol.MaxBlockResponseSize-16))
			if err != nil {
				t.Fatal(err)
			}
			if got := bodyOf(t, frame); string(got) != string(want) {
				t.Fatalf("response differs from ServeBlocks': %d bytes, want %d", len(got), len(want))
			}
		})
	}
}

func TestBlockResponseCutByBytes(t *testing.T) {
	c := testChain(t, 20, 10, 200)
	last := c.meta.LastQC
	req := syncer.BlockRequestFor(&last, 20, c.v.Genesis.Block().ID)
	limit := c.size(20) + c.size(19) + c.size(18) + 10
	frame, err := c.blockResponse(&req, limit)
	if err != nil {
		t.Fatal(err)
	}
	var resp protocol.BlockResponse
	if err := chain.Decode(bodyOf(t, frame), protocol.MaxBlockResponseSize, &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Blocks) != 3 || resp.Status != protocol.StatusSucceeded {
		t.Fatalf("%d blocks, status %s; want 3, %s", len(resp.Blocks), resp.Status, protocol.StatusSucceeded)
	}
	if err := syncer.VerifyBlockResponse(c.v.Verifier, &resp, &last, 20, c.v.Genesis.Block().ID); err != nil {
		t.Fatal(err)
	}
}

// FuzzBlockResponse checks that every response the servers build is the
// canonical encoding of a response that decodes and, when it succeeds,
// verifies.
func FuzzBlockResponse(f *testing.F) {
	c := testChain(f, 30, 2, 40)
	src := source(f, c)
	f.Add(uint8(29), uint16(64), uint8(0), false)
	f.Add(uint8(10), uint16(3), uint8(2), true)
	f.Add(uint8(0), uint16(300), uint8(30), true)
	f.Fuzz(func(t *testing.T, at uint8, count uint16, target uint8, hasTarget bool) {
		req := protocol.BlockRequest{BlockID: c.id0(int(at) % (c.Len() + 1)), Count: uint32(count)}
		if hasTarget {
			req.Target = c.id0(int(target) % (c.Len() + 1))
		}
		frame, err := c.blockResponse(&req, protocol.MaxBlockResponseSize-16)
		if err != nil {
			t.Fatal(err)
		}
		want, err := chain.Encode(syncer.ServeBlocks(src, &req, protocol.MaxBlockResponseSize-16))
		if err != nil {
			t.Fatal(err)
		}
		if got := bodyOf(t, frame); string(got) != string(want) {
			t.Fatalf("response to %+v differs from ServeBlocks'", req)
		}
	})
}

func TestCommittedResponseIsTheRange(t *testing.T) {
	c := testChain(t, 40, 3, 50)
	top := int(c.CommittedInfo().Round)
	for _, tt := range []struct {
		name     string
		req      protocol.CommittedRequest
		from, to int // the heights expected
	}{
		{"from round 0", protocol.CommittedRequest{FromRound: 0, ToRound: 10, MaxBlocks: 64}, 1, 9},
		{"middle", protocol.CommittedRequest{FromRound: 12, ToRound: 20, MaxBlocks: 64}, 12, 19},
		{"cut by count", protocol.CommittedRequest{FromRound: 5, ToRound: 30, MaxBlocks: 4}, 5, 8},
		{"past the top", protocol.CommittedRequest{FromRound: 30, ToRound: 60, MaxBlocks: 64}, 30, top},
	} {
		t.Run(tt.name, func(t *testing.T) {
			frame, err := c.committedResponse(&tt.req, protocol.MaxBlockResponseSize-16)
			if err != nil {
				t.Fatal(err)
			}
			var resp protocol.CommittedResponse
			if err := chain.Decode(bodyOf(t, frame), protocol.MaxBlockResponseSize, &resp); err != nil {
				t.Fatal(err)
			}
			want, err := c.Blocks(tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Blocks) != len(want) {
				t.Fatalf("%d blocks, want %d", len(resp.Blocks), len(want))
			}
			for i, b := range resp.Blocks {
				if b.ID != want[i].ID {
					t.Fatalf("block %d is %s, want %s", i, b.ID.Short(), want[i].ID.Short())
				}
			}
		})
	}
}
