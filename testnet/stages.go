package testnet

import (
	"context"
	"fmt"
	"time"

	"github.com/p2pnode/p2pnode/node"
)

// The stages of a run, after cometbft's e2e runner: Setup (homes and
// genesis), StartNetwork (processes, late starts scheduled), RunStages
// (perturb, wait, check for each stage of the manifest), then Shutdown
// (stop). A caller that wants the network to keep running between the
// stages and the stop (p2pnode testnet --duration) does so itself.

// Setup creates the testnet m describes in dir (see Init) and returns a
// runner of it, no node started.
func Setup(dir string, m *Manifest, cfg RunnerConfig) (*Runner, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	v, f := m.Counts()
	windows := map[string]uint64{}
	for i, name := range m.Names() {
		if w := m.Nodes[i].PruneWindow; w > 0 {
			windows[name] = w
		}
	}
	net, err := Init(dir, Options{Validators: v, Fullnodes: f, ChainID: m.ChainID, Config: m.Config, PruneWindows: windows})
	if err != nil {
		return nil, err
	}
	return NewRunner(net, cfg), nil
}

// StartNetwork starts the nodes of m without start delay, schedules the
// others, and waits until those started answer GET /status.
func (r *Runner) StartNetwork(ctx context.Context, m *Manifest) error {
	for i, name := range m.Names() {
		if d := time.Duration(m.Nodes[i].StartDelay); d > 0 {
			r.StartAfter(name, d)
			continue
		}
		if err := r.Start(name); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(m.CheckTimeout))
	defer cancel()
	return r.WaitReady(ctx, r.Up())
}

// RunStages runs m's stages in order and stops at the first failure.
func (r *Runner) RunStages(ctx context.Context, m *Manifest) error {
	for i, st := range m.Stages {
		if err := r.RunStage(ctx, st, time.Duration(m.CheckTimeout), m.PrefixWindow); err != nil {
			return fmt.Errorf("testnet: stage %d (%s): %w", i, st.Name, err)
		}
	}
	return nil
}

// RunStage applies st's perturbations, waits for st.WaitRounds more
// committed rounds, then checks that the live nodes (running, not
// partitioned) converge and that their committed prefixes agree over the
// last window rounds. timeout bounds each wait and each check.
func (r *Runner) RunStage(ctx context.Context, st Stage, timeout time.Duration, window uint64) error {
	r.log.Info("stage started", "stage", st.Name)
	watches := make([]<-chan struct{}, len(st.Perturb))
	for i, p := range st.Perturb {
		if p.AfterLog == "" {
			continue
		}
		ch, err := r.WatchLog(p.Node, p.AfterLog)
		if err != nil {
			return err
		}
		watches[i] = ch
	}
	for i, p := range st.Perturb {
		if watches[i] != nil {
			if err := waitChan(ctx, watches[i], timeout); err != nil {
				return fmt.Errorf("waiting for %q in %s's log: %w", p.AfterLog, p.Node, err)
			}
		}
		if err := r.Perturb(ctx, p, timeout); err != nil {
			return err
		}
	}
	if st.WaitRounds > 0 {
		if err := r.advance(ctx, st.WaitRounds, timeout); err != nil {
			return err
		}
	}
	if st.SkipCheck {
		r.log.Info("stage done", "stage", st.Name)
		return nil
	}
	if err := r.Check(ctx, timeout, window); err != nil {
		return err
	}
	r.log.Info("stage passed", "stage", st.Name)
	return nil
}

// Perturb applies p; timeout bounds OpWait.
func (r *Runner) Perturb(ctx context.Context, p Perturbation, timeout time.Duration) error {
	switch p.Op {
	case OpStart:
		return r.Start(p.Node)
	case OpKill:
		return r.Kill(p.Node)
	case OpRestart:
		if err := r.Kill(p.Node); err != nil {
			return err
		}
		return r.Start(p.Node)
	case OpPause:
		return r.Pause(p.Node)
	case OpResume:
		return r.Resume(p.Node)
	case OpPartition:
		return r.Partition(ctx, p.Node)
	case OpHeal:
		return r.Heal(ctx, p.Node)
	case OpWait:
		return r.advance(ctx, p.Rounds, timeout)
	default:
		return fmt.Errorf("%w: unknown op %q", ErrBadManifest, p.Op)
	}
}

// Check waits, within timeout, until the live nodes answer and converge,
// then compares their committed prefixes over the last window rounds.
func (r *Runner) Check(ctx context.Context, timeout time.Duration, window uint64) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	live := r.Live()
	if err := r.WaitReady(ctx, live); err != nil {
		return err
	}
	if err := Converge(ctx, live); err != nil {
		return err
	}
	rep, err := ComparePrefixes(ctx, live, window)
	if err != nil {
		return err
	}
	r.log.Info("committed prefixes agree", "nodes", len(live), "from_round", rep.From, "to_round", rep.To, "rounds_compared", rep.Rounds)
	return nil
}

// advance waits until the highest committed round among the live nodes
// has grown by n.
func (r *Runner) advance(ctx context.Context, n uint64, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	highest := func(ctx context.Context) uint64 {
		var h uint64
		for _, api := range r.Live() {
			if s, err := FetchStatus(ctx, api); err == nil {
				h = max(h, s.CommittedRound)
			}
		}
		return h
	}
	target := highest(ctx) + n
	return WaitFor(ctx, func(ctx context.Context) error {
		if h := highest(ctx); h < target {
			return fmt.Errorf("%w: highest committed round %d, waiting for %d", ErrNotConverged, h, target)
		}
		return nil
	})
}

// waitChan waits until ch is closed, for at most timeout.
func waitChan(ctx context.Context, ch <-chan struct{}, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-t.C:
		return fmt.Errorf("timed out after %v", timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// NodeSummary is a node's state at the end of a run.
type NodeSummary struct {
	Name  string
	Role  string
	State State
	// Status is nil if the node did not answer; Err says why.
	Status *node.Status
	Err    error
}

// Summary reads the status of every node, in the network's order.
func (r *Runner) Summary(ctx context.Context) []NodeSummary {
	var out []NodeSummary
	up := r.Up()
	for _, ni := range r.net.Nodes {
		ns := NodeSummary{Name: ni.Name, Role: ni.Role, State: r.State(ni.Name)}
		if _, ok := up[ni.Name]; ok {
			s, err := FetchStatus(ctx, ni.API)
			if err != nil {
				ns.Err = err
			} else {
				ns.Status = &s
			}
		}
		out = append(out, ns)
	}
	return out
}
