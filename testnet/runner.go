package testnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"
)

// ErrClosed is returned by a Runner's methods once it is closed.
var ErrClosed = errors.New("testnet: runner closed")

// Runner runs the nodes of a Network as processes of the p2pnode binary
// (`p2pnode run --home <home>`) and perturbs them: start, kill (SIGKILL),
// pause (SIGSTOP) and resume (SIGCONT), partition and heal (through each
// node's admin API). It copies each node's output to the node's log file
// and, prefixed by the node's name, to Out. Its methods are safe for
// concurrent use. Close kills every process; call it on every path out
// (defer or t.Cleanup), failures included.
type Runner struct {
	binary string
	net    *Network
	env    []string
	log    *slog.Logger

	mu      sync.Mutex
	outMu   sync.Mutex
	members map[string]*member
	order   []string // node names in the network's order
	timers  []*time.Timer
	closed  bool
}

// RunnerConfig configures a Runner.
type RunnerConfig struct {
	// Binary is the path of the p2pnode binary.
	Binary string
	// Out, if not nil, receives every node's output lines, each prefixed
	// by the node's name.
	Out io.Writer
	// Env is added to the nodes' environment (e.g. GOLOG_LOG_LEVEL=...).
	Env []string
	// Logger receives the runner's own logs (stages, perturbations); nil
	// discards them.
	Logger *slog.Logger
}

// NewRunner returns a runner of net's nodes, none of them started.
func NewRunner(net *Network, cfg RunnerConfig) *Runner {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Runner{binary: cfg.Binary, net: net, env: cfg.Env, log: log, members: map[string]*member{}}
	width := 0
	for _, ni := range net.Nodes {
		width = max(width, len(ni.Name))
	}
	for _, ni := range net.Nodes {
		m := &member{info: ni}
		if cfg.Out != nil {
			m.out = &prefixWriter{mu: &r.outMu, w: cfg.Out, prefix: fmt.Sprintf("%-*s | ", width, ni.Name)}
		}
		r.members[ni.Name] = m
		r.order = append(r.order, ni.Name)
	}
	return r
}

// Mute stops copying the nodes' output to RunnerConfig.Out (the log files
// still get it), e.g. before printing a summary there.
func (r *Runner) Mute() {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	for _, m := range r.members {
		if m.out != nil {
			m.out.w = nil
		}
	}
}

// Network returns the network the runner runs.
func (r *Runner) Network() *Network { return r.net }

// member returns the node called name; the caller holds r.mu.
func (r *Runner) member(name string) (*member, error) {
	if r.closed {
		return nil, ErrClosed
	}
	m := r.members[name]
	if m == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownNode, name)
	}
	return m, nil
}

// Start starts the node's process; the node must be down (never started,
// killed or exited), and restarts from its home's store.
func (r *Runner) Start(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := r.member(name)
	if err != nil {
		return err
	}
	if m.state != Down {
		return fmt.Errorf("%w: start %s: it is %s", ErrNodeState, name, m.state)
	}
	r.log.Info("start node", "node", name)
	return r.startProc(m)
}

// StartAfter starts the node after d, unless the runner is closed by
// then; a failure to start is logged.
func (r *Runner) StartAfter(name string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.log.Info("node starts later", "node", name, "after", d.String())
	r.timers = append(r.timers, time.AfterFunc(d, func() {
		if err := r.Start(name); err != nil && !errors.Is(err, ErrClosed) {
			r.log.Error("late start failed", "node", name, "err", err)
		}
	}))
}

// Kill kills the node's process with SIGKILL and waits until it exited.
func (r *Runner) Kill(name string) error {
	r.mu.Lock()
	m, err := r.member(name)
	if err == nil {
		err = m.signal(sigKill)
	}
	var p *proc
	if err == nil {
		p = m.proc
		r.log.Info("kill node", "node", name)
	}
	r.mu.Unlock()
	if err != nil {
		return err
	}
	<-p.done
	return nil
}

// Pause stops the node's process with SIGSTOP.
func (r *Runner) Pause(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := r.member(name)
	if err != nil {
		return err
	}
	if m.state != Running {
		return fmt.Errorf("%w: pause %s: it is %s", ErrNodeState, name, m.state)
	}
	if err := m.signal(sigStop); err != nil {
		return err
	}
	r.log.Info("pause node", "node", name)
	m.state = Paused
	return nil
}

// Resume continues a paused node's process with SIGCONT.
func (r *Runner) Resume(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := r.member(name)
	if err != nil {
		return err
	}
	if m.state != Paused {
		return fmt.Errorf("%w: resume %s: it is %s", ErrNodeState, name, m.state)
	}
	if err := m.signal(sigCont); err != nil {
		return err
	}
	r.log.Info("resume node", "node", name)
	m.state = Running
	return nil
}

// Partition cuts the node off from every other node of the network: its
// admin API blocks each of their peer ids, which closes the connections
// and refuses new ones both ways. The node must be running; the partition
// lasts until Heal or until the process ends.
func (r *Runner) Partition(ctx context.Context, name string) error {
	return r.gate(ctx, name, "block", true)
}

// Heal undoes Partition: the node accepts the other nodes again and
// reconnects to its bootstrap peers at once.
func (r *Runner) Heal(ctx context.Context, name string) error {
	return r.gate(ctx, name, "unblock", false)
}

func (r *Runner) gate(ctx context.Context, name, op string, cut bool) error {
	r.mu.Lock()
	m, err := r.member(name)
	if err == nil && m.state != Running {
		err = fmt.Errorf("%w: %s %s: it is %s", ErrNodeState, op, name, m.state)
	}
	r.mu.Unlock()
	if err != nil {
		return err
	}
	r.log.Info(op+" peers", "node", name)
	for _, other := range r.net.Nodes {
		if other.Name == name {
			continue
		}
		if err := adminCall(ctx, m.info.Admin, op, other.PeerID); err != nil {
			return err
		}
	}
	r.mu.Lock()
	m.cut = cut
	r.mu.Unlock()
	return nil
}

// State returns the state of the node's process (Down for an unknown
// node).
func (r *Runner) State(name string) State {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m := r.members[name]; m != nil {
		return m.state
	}
	return Down
}

// WatchLog returns a channel closed when the node next prints a line
// containing substr (lines printed before the call do not count).
func (r *Runner) WatchLog(name, substr string) (<-chan struct{}, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := r.member(name)
	if err != nil {
		return nil, err
	}
	w := &logWatch{substr: substr, hit: make(chan struct{})}
	m.watches = append(m.watches, w)
	return w.hit, nil
}

// API returns the node's API base URL ("" for an unknown node).
func (r *Runner) API(name string) string {
	ni, _ := r.net.Node(name)
	return ni.API
}

// Live returns the API base URLs, by name, of the nodes that are running
// and not partitioned: those that must converge.
func (r *Runner) Live() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]string{}
	for name, m := range r.members {
		if m.state == Running && !m.cut {
			out[name] = m.info.API
		}
	}
	return out
}

// Up returns the API base URLs, by name, of the nodes whose process is
// running (partitioned or not).
func (r *Runner) Up() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]string{}
	for name, m := range r.members {
		if m.state == Running {
			out[name] = m.info.API
		}
	}
	return out
}

// WaitReady waits until every node of apis answers GET /status.
func (r *Runner) WaitReady(ctx context.Context, apis map[string]string) error {
	for _, name := range slices.Sorted(maps.Keys(apis)) {
		err := WaitFor(ctx, func(ctx context.Context) error {
			if r.State(name) == Down {
				return fmt.Errorf("%w: %s exited", ErrNodeState, name)
			}
			_, err := FetchStatus(ctx, apis[name])
			return err
		})
		if err != nil {
			return fmt.Errorf("testnet: %s not ready: %w", name, err)
		}
	}
	return nil
}

// Shutdown stops every node gracefully: SIGCONT to paused ones, SIGTERM to
// all, then it waits up to timeout for them to exit and kills those still
// running. It returns the errors of the processes that did not exit with
// status 0 on SIGTERM. The runner is closed afterwards.
func (r *Runner) Shutdown(timeout time.Duration) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	r.stopTimers()
	var procs []*proc
	var names []string
	for _, name := range r.order {
		m := r.members[name]
		if m.state == Down || m.proc == nil {
			continue
		}
		if m.state == Paused {
			_ = m.signal(sigCont)
		}
		_ = m.signal(sigTerm)
		procs = append(procs, m.proc)
		names = append(names, name)
	}
	r.mu.Unlock()
	deadline := time.Now().Add(timeout)
	var errs []error
	for i, p := range procs {
		if !waitProc(p, time.Until(deadline)) {
			_ = p.cmd.Process.Kill()
			<-p.done
			errs = append(errs, fmt.Errorf("testnet: %s did not stop within %v", names[i], timeout))
			continue
		}
		if p.err != nil {
			errs = append(errs, fmt.Errorf("testnet: %s: %w", names[i], p.err))
		}
	}
	r.Close()
	return errors.Join(errs...)
}

// Close kills every process still running with SIGKILL, waits for them
// and closes the log files. It is idempotent.
func (r *Runner) Close() {
	r.mu.Lock()
	r.closed = true
	r.stopTimers()
	var procs []*proc
	for _, m := range r.members {
		if m.proc != nil {
			_ = m.proc.cmd.Process.Kill() // an exited process makes this a no-op
			procs = append(procs, m.proc)
		}
	}
	r.mu.Unlock()
	for _, p := range procs {
		<-p.done
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.members {
		if m.logFile != nil {
			_ = m.logFile.Close()
			m.logFile = nil
		}
	}
}

// stopTimers cancels the pending late starts; the caller holds r.mu.
func (r *Runner) stopTimers() {
	for _, t := range r.timers {
		t.Stop()
	}
	r.timers = nil
}
