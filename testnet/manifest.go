package testnet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// ErrBadManifest is the reason of every error about a manifest.
var ErrBadManifest = errors.New("testnet: invalid manifest")

// Manifest describes a testnet and a scenario to run on it, as JSON:
//
//	{
//	  "nodes": [
//	    {"role": "validator"}, {"role": "validator"},
//	    {"role": "validator"}, {"role": "validator"},
//	    {"role": "fullnode", "start_delay": "20s"}
//	  ],
//	  "config": {"round_timeout": "500ms", "fast_forward_rounds": 100},
//	  "stages": [
//	    {"name": "crash", "perturb": [{"op": "kill", "node": "validator1"}], "wait_rounds": 20},
//	    {"name": "recover", "perturb": [{"op": "start", "node": "validator1"}]}
//	  ]
//	}
//
// Nodes are named by role and order: validator0, validator1, ...,
// fullnode0, ... A stage applies its perturbations in order, lets the
// chain grow by wait_rounds committed rounds, then checks the nodes that
// run and are not partitioned: they converge and their committed prefixes
// agree.
type Manifest struct {
	// ChainID is the chain's id; "" means DefaultChainID.
	ChainID string `json:"chain_id,omitempty"`
	// Nodes lists the nodes; validators come first.
	Nodes []NodeSpec `json:"nodes"`
	// Config is applied to every node's config file over the testnet's
	// defaults (DefaultManifest's); name, listen, bootstrap, api, admin and
	// seed are set per node.
	Config HomeConfig `json:"config"`
	// Stages run in order once the nodes without start delay answer.
	Stages []Stage `json:"stages,omitempty"`
	// CheckTimeout bounds each wait and each check of a stage.
	CheckTimeout Duration `json:"check_timeout"`
	// PrefixWindow is how many of the latest committed rounds the prefix
	// check compares; 0 compares them all.
	PrefixWindow uint64 `json:"prefix_window"`
}

// NodeSpec is a node of a Manifest.
type NodeSpec struct {
	// Name, if set, must be the name the node gets from its role and order.
	Name string `json:"name,omitempty"`
	// Role is RoleValidator or RoleFullnode.
	Role string `json:"role"`
	// StartDelay is how long after the network's start the node starts.
	StartDelay Duration `json:"start_delay,omitempty"`
	// PruneWindow, if not 0, replaces Config.PruneWindow for this node: a
	// testnet of pruned nodes beside full-history ones.
	PruneWindow uint64 `json:"prune_window,omitempty"`
}

// Stage is one step of a scenario.
type Stage struct {
	Name string `json:"name"`
	// Perturb are applied in order.
	Perturb []Perturbation `json:"perturb,omitempty"`
	// WaitRounds: after the perturbations, wait until the highest committed
	// round among the live nodes has grown by this many rounds.
	WaitRounds uint64 `json:"wait_rounds,omitempty"`
	// SkipCheck skips the convergence and prefix checks.
	SkipCheck bool `json:"skip_check,omitempty"`
}

// The operations of a Perturbation.
const (
	OpStart     = "start"     // start a node that is down (first start or restart)
	OpKill      = "kill"      // SIGKILL; the node stays down
	OpRestart   = "restart"   // kill, then start
	OpPause     = "pause"     // SIGSTOP
	OpResume    = "resume"    // SIGCONT
	OpPartition = "partition" // cut the node off from all others
	OpHeal      = "heal"      // undo partition
	OpWait      = "wait"      // wait for Rounds more committed rounds
)

// Perturbation is one operation on one node.
type Perturbation struct {
	Op   string `json:"op"`
	Node string `json:"node,omitempty"`
	// AfterLog delays the operation until the node prints a line holding
	// this text (watched from the start of the stage), e.g.
	// "fast-forward started" to kill a node during its state sync.
	AfterLog string `json:"after_log,omitempty"`
	// Rounds is OpWait's number of committed rounds.
	Rounds uint64 `json:"rounds,omitempty"`
}

// DefaultManifest returns a testnet of the given size without stages, its
// full nodes starting lateJoin after the validators. Its Config is tuned
// for a local testnet where rounds last tens of milliseconds: 100
// transactions per second per validator, a fast-forward threshold of 100
// rounds, chunks of 100 transactions and a state sync progress line every
// 250 ms, so that a node that joins 20 s late visibly catches up by state
// sync.
func DefaultManifest(validators, fullnodes int, lateJoin time.Duration) Manifest {
	c := DefaultHomeConfig()
	c.TxRate = 100
	c.FastForwardRounds = 100
	c.ChunkTxs = 100
	c.ProgressInterval = Duration(250 * time.Millisecond)
	c.SyncInfoInterval = Duration(500 * time.Millisecond)
	c.ReconnectMin = Duration(100 * time.Millisecond)
	c.ReconnectMax = Duration(2 * time.Second)
	m := Manifest{Config: c, CheckTimeout: Duration(time.Minute), PrefixWindow: 2000}
	for range validators {
		m.Nodes = append(m.Nodes, NodeSpec{Role: RoleValidator})
	}
	for range fullnodes {
		m.Nodes = append(m.Nodes, NodeSpec{Role: RoleFullnode, StartDelay: Duration(lateJoin)})
	}
	return m
}

// DecodeManifest reads a manifest over DefaultManifest(0, 0, 0): fields
// the file leaves out, in config too, keep their default. Unknown fields
// are an error.
func DecodeManifest(data []byte) (*Manifest, error) {
	m := DefaultManifest(0, 0, 0)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadManifest, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the JSON object", ErrBadManifest)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Counts returns the number of validators and full nodes.
func (m *Manifest) Counts() (validators, fullnodes int) {
	for _, n := range m.Nodes {
		if n.Role == RoleValidator {
			validators++
		} else {
			fullnodes++
		}
	}
	return validators, fullnodes
}

// Names returns the nodes' names, in the order of Nodes.
func (m *Manifest) Names() []string {
	var names []string
	var v, f int
	for _, n := range m.Nodes {
		if n.Role == RoleValidator {
			names = append(names, RoleValidator+strconv.Itoa(v))
			v++
		} else {
			names = append(names, RoleFullnode+strconv.Itoa(f))
			f++
		}
	}
	return names
}

// Validate checks m: roles, names, that validators come first, and that
// every perturbation names a known operation and node.
func (m *Manifest) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadManifest}, args...)...)
	}
	names := map[string]bool{}
	seenFull := false
	for i, name := range m.Names() {
		n := m.Nodes[i]
		switch n.Role {
		case RoleValidator:
			if seenFull {
				return bad("node %d: validators must come before full nodes", i)
			}
		case RoleFullnode:
			seenFull = true
		default:
			return bad("node %d: role %q, want %q or %q", i, n.Role, RoleValidator, RoleFullnode)
		}
		if n.Name != "" && n.Name != name {
			return bad("node %d is called %q, want %q (nodes are named by role and order)", i, n.Name, name)
		}
		if n.StartDelay < 0 {
			return bad("node %s: negative start delay", name)
		}
		names[name] = true
	}
	if v, _ := m.Counts(); v == 0 {
		return bad("no validator")
	}
	if m.CheckTimeout <= 0 {
		return bad("check_timeout must be positive")
	}
	for i, st := range m.Stages {
		for j, p := range st.Perturb {
			switch p.Op {
			case OpWait:
				if p.Rounds == 0 {
					return bad("stage %d (%s), perturbation %d: wait needs rounds", i, st.Name, j)
				}
				continue
			case OpStart, OpKill, OpRestart, OpPause, OpResume, OpPartition, OpHeal:
			default:
				return bad("stage %d (%s), perturbation %d: unknown op %q", i, st.Name, j, p.Op)
			}
			if !names[p.Node] {
				return bad("stage %d (%s), perturbation %d: unknown node %q", i, st.Name, j, p.Node)
			}
		}
	}
	return nil
}
