package testnet

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// ErrUnknownNode is returned for a node name the network does not have.
var ErrUnknownNode = errors.New("testnet: unknown node")

// ErrNodeState is returned for an operation the node's state forbids, such
// as killing a node that is not running.
var ErrNodeState = errors.New("testnet: wrong node state")

// State is the state of a node's process.
type State int

// The states of a node's process.
const (
	// Down: never started, killed, or exited.
	Down State = iota
	// Running: started and not paused.
	Running
	// Paused: stopped with SIGSTOP.
	Paused
)

func (s State) String() string {
	switch s {
	case Running:
		return "running"
	case Paused:
		return "paused"
	default:
		return "down"
	}
}

// proc is one run of a node's process.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process exited and its output is read
	err  error         // cmd.Wait's result, set before done closes
}

// member is a node of the network and its process, if any.
type member struct {
	info    NodeInfo
	state   State
	proc    *proc
	cut     bool          // partitioned
	logFile *os.File      // the node's log, appended to across restarts
	watches []*logWatch   // waiting for a log line
	out     *prefixWriter // the terminal, or nil
}

// logWatch is a pending WatchLog.
type logWatch struct {
	substr string
	hit    chan struct{}
}

// startProc starts m's process from binary, with env appended to the
// environment, streaming its output to its log file, the terminal and the
// log watches. The caller holds the runner's lock.
func (r *Runner) startProc(m *member) error {
	if m.logFile == nil {
		f, err := os.OpenFile(m.info.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("testnet: open log: %w", err)
		}
		m.logFile = f
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("testnet: pipe: %w", err)
	}
	cmd := exec.Command(r.binary, "run", "--home", m.info.Home)
	cmd.Env = append(os.Environ(), r.env...)
	cmd.Stdout = pw
	cmd.Stderr = pw
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		_ = pr.Close()
		_ = pw.Close()
		return fmt.Errorf("testnet: start %s: %w", m.info.Name, err)
	}
	_ = pw.Close() // the child holds its end
	p := &proc{cmd: cmd, done: make(chan struct{})}
	m.proc = p
	m.state = Running
	go func() {
		r.pump(m, pr)
		_ = pr.Close()
		p.err = cmd.Wait()
		r.mu.Lock()
		if m.proc == p {
			m.state = Down
			m.cut = false
		}
		r.mu.Unlock()
		close(p.done)
	}()
	return nil
}

// pump copies the process's output line by line until it ends.
func (r *Runner) pump(m *member, pr io.Reader) {
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		_, _ = m.logFile.WriteString(line + "\n")
		if m.out != nil {
			m.out.writeLine(line)
		}
		r.mu.Lock()
		kept := m.watches[:0]
		for _, w := range m.watches {
			if strings.Contains(line, w.substr) {
				close(w.hit)
			} else {
				kept = append(kept, w)
			}
		}
		clear(m.watches[len(kept):])
		m.watches = kept
		r.mu.Unlock()
	}
}

// signal sends sig to m's process; the caller holds the runner's lock.
func (m *member) signal(sig os.Signal) error {
	if m.proc == nil || m.state == Down {
		return fmt.Errorf("%w: %s is down", ErrNodeState, m.info.Name)
	}
	if err := m.proc.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("testnet: signal %s: %w", m.info.Name, err)
	}
	return nil
}

// waitProc waits for p, if not nil, to exit, for at most d; it reports
// whether it exited.
func waitProc(p *proc, d time.Duration) bool {
	if p == nil {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

// prefixWriter writes whole lines, each prefixed by a node's name, to a
// writer shared by all nodes.
type prefixWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
}

func (p *prefixWriter) writeLine(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.w != nil {
		_, _ = io.WriteString(p.w, p.prefix+line+"\n")
	}
}
