package testnet_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/node"
	"github.com/p2pnode/p2pnode/testnet"
)

// Each scenario runs real processes of the p2pnode binary on loopback and
// checks them through their HTTP API and logs only.

// TestLateFullNodeFastForwards: a full node that starts once the chain is
// far past the fast-forward threshold catches up by a fast-forward (a
// snapshot restore, the default; its log shows the fast-forward), then
// follows the validators.
func TestLateFullNodeFastForwards(t *testing.T) {
	m := e2eManifest(4, 1)
	m.Nodes[4].StartDelay = testnet.Duration(time.Hour) // started by the test
	r := startNet(t, m)
	stage(t, r, m, testnet.Stage{Name: "validators run ahead", WaitRounds: 3 * m.Config.FastForwardRounds})

	started := watch(t, r, "fullnode0", "fast-forward started")
	done := watch(t, r, "fullnode0", "fast-forward done")
	stage(t, r, m, testnet.Stage{Name: "full node joins", Perturb: []testnet.Perturbation{{Op: testnet.OpStart, Node: "fullnode0"}}})
	waitLog(t, started, `"fast-forward started"`)
	waitLog(t, done, `"fast-forward done"`)
	waitStatus(t, r, "fullnode0", "follows the chain after the fast-forward", func(s node.Status) error {
		if s.RootRound < m.Config.FastForwardRounds || s.Syncing {
			return fmt.Errorf("root round %d, syncing %v", s.RootRound, s.Syncing)
		}
		return nil
	})
	checkDashboardMetrics(t, r)
	checkTxProof(t, r, "validator0", "fullnode0")
}

// checkTxProof submits a key/value transaction to node from and waits until
// node serve serves it with a proof that verifies against the genesis
// (what `p2pnode tx` checks), then the key's value with a state proof.
func checkTxProof(t *testing.T, r *testnet.Runner, from, serve string) {
	t.Helper()
	hash := submitKV(t, r, from, "e2e/proof", t.Name())
	p := waitTxProof(t, r, serve, hash)
	if k, v, err := chain.DecodeKV(p.Tx); err != nil || string(k) != "e2e/proof" || string(v) != t.Name() {
		t.Fatalf("%s: proof of another transaction", serve)
	}
	if sp := waitStateProof(t, r, serve, "e2e/proof"); !sp.Present || string(sp.Value) != t.Name() {
		t.Fatalf("%s: state proof: present %v, value %q; want %q", serve, sp.Present, sp.Value, t.Name())
	}
}

// homeOf loads the home directory of the named node.
func homeOf(t *testing.T, r *testnet.Runner, name string) *testnet.Home {
	t.Helper()
	ni, ok := r.Network().Node(name)
	if !ok {
		t.Fatalf("no node %s", name)
	}
	h, err := testnet.LoadHome(ni.Home)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// submitKV submits the transaction that sets key to value to node from and
// waits until from serves it committed, with a proof; it returns its hash.
func submitKV(t *testing.T, r *testnet.Runner, from, key, value string) chain.Hash {
	t.Helper()
	tx, err := chain.EncodeKV([]byte(key), []byte(value))
	if err != nil {
		t.Fatal(err)
	}
	hash, err := testnet.SubmitTx(t.Context(), r.API(from), tx)
	if err != nil {
		t.Fatal(err)
	}
	waitTxProof(t, r, from, hash)
	return hash
}

// waitTxProof waits until node serve serves the transaction of hash with a
// proof that verifies, failing the test after a minute.
func waitTxProof(t *testing.T, r *testnet.Runner, serve string, hash chain.Hash) *ledger.TxProof {
	t.Helper()
	g := homeOf(t, r, serve).Genesis
	return waitProof(t, serve, "proof of transaction "+hash.Short(), func(ctx context.Context) (*ledger.TxProof, error) {
		return testnet.FetchTxProof(ctx, r.API(serve), g, hash)
	})
}

// waitStateProof waits until node serve serves key's value with a proof
// that verifies (503 while its state tree follows a sync), failing the
// test after a minute.
func waitStateProof(t *testing.T, r *testnet.Runner, serve, key string) *ledger.StateProof {
	t.Helper()
	g := homeOf(t, r, serve).Genesis
	return waitProof(t, serve, "state proof of "+key, func(ctx context.Context) (*ledger.StateProof, error) {
		return testnet.FetchStateProof(ctx, r.API(serve), g, []byte(key))
	})
}

// waitProof polls fetch until it returns a verified proof, failing the
// test after a minute.
func waitProof[P any](t *testing.T, serve, what string, fetch func(context.Context) (P, error)) P {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var p P
	if err := testnet.WaitFor(ctx, func(ctx context.Context) (err error) {
		p, err = fetch(ctx)
		return err
	}); err != nil {
		t.Fatalf("%s: %s: %v", serve, what, err)
	}
	return p
}

// TestPrunedValidatorBesideFullHistory: one validator keeps 300 versions
// of history, the others all of it; a full node that joins late
// fast-forwards from all four (the pruned one answers pruned below its
// window) to the whole history, and follows the validators.
func TestPrunedValidatorBesideFullHistory(t *testing.T) {
	m := e2eManifest(4, 1)
	m.Config.SnapshotSync = false // the full node replays the whole history
	m.Nodes[0].PruneWindow = 300
	m.Config.PruneInterval = testnet.Duration(100 * time.Millisecond)
	m.Nodes[4].StartDelay = testnet.Duration(time.Hour) // started by the test
	r := startNet(t, m)
	stage(t, r, m, testnet.Stage{Name: "validators run ahead", WaitRounds: 3 * m.Config.FastForwardRounds})
	waitStatus(t, r, "validator0", "prunes its history", func(s node.Status) error {
		if s.EarliestVersion == 0 || s.CommittedVersion-s.EarliestVersion > 600 {
			return fmt.Errorf("keeps versions %d to %d", s.EarliestVersion, s.CommittedVersion)
		}
		return nil
	})
	done := watch(t, r, "fullnode0", "fast-forward done")
	stage(t, r, m, testnet.Stage{Name: "full node joins", Perturb: []testnet.Perturbation{{Op: testnet.OpStart, Node: "fullnode0"}}})
	waitLog(t, done, `"fast-forward done"`)
	waitStatus(t, r, "fullnode0", "follows the chain with the whole history", func(s node.Status) error {
		if s.Syncing || s.EarliestVersion != 0 || s.RootRound < m.Config.FastForwardRounds {
			return fmt.Errorf("root round %d, syncing %v, history from version %d", s.RootRound, s.Syncing, s.EarliestVersion)
		}
		return nil
	})
	// (A validator that fell behind may have fast-forwarded too: it has
	// every transaction, but no block below the one it synced to.)
	waitStatus(t, r, "validator1", "keeps every transaction", func(s node.Status) error {
		if s.EarliestVersion != 0 {
			return fmt.Errorf("history from version %d", s.EarliestVersion)
		}
		return nil
	})
}

// TestKilledValidatorCatchesUpAndVotes: a validator killed with SIGKILL
// while the others go on restarts from its store, catches up and votes in
// the current rounds again.
func TestKilledValidatorCatchesUpAndVotes(t *testing.T) {
	m := e2eManifest(4, 0)
	r := startNet(t, m)
	stage(t, r, m, testnet.Stage{Name: "warm up", WaitRounds: 10})
	stage(t, r, m, testnet.Stage{
		Name:       "kill validator1",
		Perturb:    []testnet.Perturbation{{Op: testnet.OpKill, Node: "validator1"}},
		WaitRounds: 2 * m.Config.FastForwardRounds,
	})
	s0, err := testnet.FetchStatus(t.Context(), r.API("validator0"))
	if err != nil {
		t.Fatal(err)
	}
	stage(t, r, m, testnet.Stage{Name: "restart validator1", Perturb: []testnet.Perturbation{{Op: testnet.OpStart, Node: "validator1"}}})
	waitStatus(t, r, "validator1", "votes again", func(s node.Status) error {
		if s.Consensus == nil {
			return errors.New("no consensus status: not a validator")
		}
		if s.Consensus.LastVotedRound <= s0.Round+5 {
			return fmt.Errorf("last voted round %d, want > %d (past the rounds it missed)", s.Consensus.LastVotedRound, s0.Round+5)
		}
		return nil
	})
}

// TestFullNodeKilledDuringStateSyncResumes: a full node killed with
// SIGKILL in the middle of its state sync resumes it after a restart and
// converges.
func TestFullNodeKilledDuringStateSyncResumes(t *testing.T) {
	m := e2eManifest(4, 1)
	m.Nodes[4].StartDelay = testnet.Duration(time.Hour) // started by the test
	m.Config.TxRate = 250
	m.Config.SnapshotSync = false // replay; TestLateFullNodeRestoresSnapshot kills a restore
	m.Config.ChunkTxs = 10        // a state sync of many chunks
	m.Config.ProgressInterval = testnet.Duration(50 * time.Millisecond)
	r := startNet(t, m)
	stage(t, r, m, testnet.Stage{Name: "validators run ahead", WaitRounds: 4 * m.Config.FastForwardRounds})

	killAndResume(t, r, m, "state sync", "state sync progress", "fast-forward done", "resuming fast-forward")
}

// killAndResume starts fullnode0, kills it with SIGKILL once its log shows
// progress (and not yet done), restarts it and waits until its log shows
// each of lines.
func killAndResume(t *testing.T, r *testnet.Runner, m *testnet.Manifest, sync, progress, done string, lines ...string) {
	t.Helper()
	stage(t, r, m, testnet.Stage{
		Name: "full node starts and is killed during its " + sync,
		Perturb: []testnet.Perturbation{
			{Op: testnet.OpStart, Node: "fullnode0"},
			{Op: testnet.OpKill, Node: "fullnode0", AfterLog: progress},
		},
		SkipCheck: true,
	})
	if logHas(t, r, "fullnode0", done) {
		t.Fatalf("the %s finished before the kill; make it longer", sync)
	}
	seen := make([]<-chan struct{}, len(lines))
	for i, l := range lines {
		seen[i] = watch(t, r, "fullnode0", l)
	}
	stage(t, r, m, testnet.Stage{Name: "full node restarts", Perturb: []testnet.Perturbation{{Op: testnet.OpStart, Node: "fullnode0"}}})
	for i, l := range lines {
		waitLog(t, seen[i], strconv.Quote(l))
	}
}

// TestLateFullNodeRestoresSnapshot: a full node that joins late restores
// the state at its sync target from verified snapshot chunks instead of
// replaying the history; killed with SIGKILL in the middle of the
// restore, it resumes after a restart from the chunks it stored. It then
// holds no history below the snapshot, serves a key written before it with
// a state proof, and follows the validators.
func TestLateFullNodeRestoresSnapshot(t *testing.T) {
	m := e2eManifest(4, 1)
	m.Nodes[4].StartDelay = testnet.Duration(time.Hour) // started by the test
	m.Config.SnapshotSync = true
	// A restore of about 500 chunks, each stored with an fsync, and a
	// progress line (the kill's cue) well before its end on a fast disk.
	m.Config.StateChunkLeaves = 4
	m.Config.TxRate = 250
	m.Config.ProgressInterval = testnet.Duration(20 * time.Millisecond)
	r := startNet(t, m)
	early := submitKV(t, r, "validator0", "e2e/early", "before the snapshot")
	stage(t, r, m, testnet.Stage{Name: "validators run ahead", WaitRounds: 4 * m.Config.FastForwardRounds})

	killAndResume(t, r, m, "snapshot restore", "snapshot sync progress", "snapshot sync done", "snapshot sync resumed", "snapshot sync done")
	waitStatus(t, r, "fullnode0", "follows the chain from the snapshot", func(s node.Status) error {
		if s.Syncing || s.RootRound < m.Config.FastForwardRounds || s.EarliestVersion == 0 || s.EarliestVersion > s.CommittedVersion {
			return fmt.Errorf("root round %d, syncing %v, history from version %d of %d", s.RootRound, s.Syncing, s.EarliestVersion, s.CommittedVersion)
		}
		return nil
	})
	h := homeOf(t, r, "fullnode0")
	// The state tree may still follow a replay after the restore.
	sp := waitStateProof(t, r, "fullnode0", "e2e/early")
	if !sp.Present || string(sp.Value) != "before the snapshot" {
		t.Fatalf("state proof of a restored key: present %v, value %q", sp.Present, sp.Value)
	}
	if _, err := testnet.FetchTxProof(t.Context(), r.API("fullnode0"), h.Genesis, early); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("proof of a transaction below the snapshot: %v, want 404 Not Found", err)
	}
	checkTxProof(t, r, "validator0", "fullnode0")
}

// TestPartitionedValidatorRejoins: a validator cut off from all peers falls
// behind while the other three commit; once healed it catches up.
func TestPartitionedValidatorRejoins(t *testing.T) {
	m := e2eManifest(4, 0)
	r := startNet(t, m)
	stage(t, r, m, testnet.Stage{Name: "warm up", WaitRounds: 10})
	stage(t, r, m, testnet.Stage{
		Name:       "partition validator2",
		Perturb:    []testnet.Perturbation{{Op: testnet.OpPartition, Node: "validator2"}},
		WaitRounds: 40,
	})
	cut, err := testnet.FetchStatus(t.Context(), r.API("validator2"))
	if err != nil {
		t.Fatal(err)
	}
	live, err := testnet.FetchStatus(t.Context(), r.API("validator0"))
	if err != nil {
		t.Fatal(err)
	}
	if cut.Peers != 0 || cut.CommittedRound+20 > live.CommittedRound {
		t.Fatalf("partitioned validator2 has %d peers, committed round %d; validator0 is at %d: want no peers and far behind",
			cut.Peers, cut.CommittedRound, live.CommittedRound)
	}
	stage(t, r, m, testnet.Stage{Name: "heal validator2", Perturb: []testnet.Perturbation{{Op: testnet.OpHeal, Node: "validator2"}}})
	waitStatus(t, r, "validator2", "votes again", func(s node.Status) error {
		if v := s.Consensus.LastVotedRound; v <= live.Round {
			return fmt.Errorf("last voted round %d, want > %d", v, live.Round)
		}
		return nil
	})
}

// TestSoakManifest runs testdata/soak.json: every kind of perturbation in
// turn. It runs with -soak only.
func TestSoakManifest(t *testing.T) {
	if !*soak {
		t.Skip("long scenario: run with -soak")
	}
	raw, err := os.ReadFile("testdata/soak.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := testnet.DecodeManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	r := startNet(t, m)
	if err := r.RunStages(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	if err := r.Shutdown(20 * time.Second); err != nil {
		t.Fatalf("graceful shutdown: %v", err)
	}
}

// TestGracefulShutdown: SIGTERM stops every node with exit status 0.
func TestGracefulShutdown(t *testing.T) {
	m := e2eManifest(4, 0)
	r := startNet(t, m)
	stage(t, r, m, testnet.Stage{Name: "warm up", WaitRounds: 5})
	if err := r.Shutdown(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	for _, n := range r.Network().Nodes {
		if !logHas(t, r, n.Name, "node shut down cleanly") {
			t.Errorf("%s did not log its clean shutdown", n.Name)
		}
	}
}
