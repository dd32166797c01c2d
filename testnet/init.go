package testnet

import (
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
)

// NetworkFile is the name of the file, at the root of a testnet's
// directory, that lists its nodes (a Network).
const NetworkFile = "testnet.json"

// DefaultChainID is the chain id of a testnet made without one.
const DefaultChainID = "p2pnode-testnet"

// Roles of a node.
const (
	RoleValidator = "validator"
	RoleFullnode  = "fullnode"
)

// ErrBadOptions is the reason of every error Options.Validate returns.
var ErrBadOptions = errors.New("testnet: invalid options")

// Options describes a testnet for Init.
type Options struct {
	// Validators and Fullnodes are how many nodes of each role to make
	// (named validator0.., fullnode0..).
	Validators, Fullnodes int
	// ChainID is the chain's id; "" means DefaultChainID.
	ChainID string
	// Config is every node's config template; Init fills in Name, Listen,
	// Bootstrap, API, Admin and Seed, and clears TxRate on full nodes.
	// TxRate is the rate of each validator.
	Config HomeConfig
	// PruneWindows, by node name, replace Config.PruneWindow for those
	// nodes.
	PruneWindows map[string]uint64
}

// Validate checks o.
func (o *Options) Validate() error {
	switch {
	case o.Validators < 1 || o.Validators > chain.MaxValidators:
		return fmt.Errorf("%w: %d validators, want 1 to %d", ErrBadOptions, o.Validators, chain.MaxValidators)
	case o.Fullnodes < 0 || o.Fullnodes > 100:
		return fmt.Errorf("%w: %d full nodes, want 0 to 100", ErrBadOptions, o.Fullnodes)
	}
	if o.ChainID != "" {
		if err := chain.ValidateChainID(o.ChainID); err != nil {
			return fmt.Errorf("%w: %w", ErrBadOptions, err)
		}
	}
	return nil
}

// Network lists a testnet's nodes; Init writes it to NetworkFile.
type Network struct {
	ChainID string     `json:"chain_id"`
	Nodes   []NodeInfo `json:"nodes"`
}

// NodeInfo is one node of a Network.
type NodeInfo struct {
	Name string `json:"name"`
	// Role is RoleValidator or RoleFullnode.
	Role   string `json:"role"`
	PeerID string `json:"peer_id"`
	// Multiaddrs are the node's listen addresses ending in /p2p/<peer id>.
	Multiaddrs []string `json:"multiaddrs"`
	// API is the HTTP API's base URL (http://127.0.0.1:port).
	API string `json:"api"`
	// Admin is the admin API's base URL.
	Admin string `json:"admin"`
	// Home is the node's home directory; Log its log file.
	Home string `json:"home"`
	Log  string `json:"log"`
}

// Node returns the node called name.
func (n *Network) Node(name string) (NodeInfo, bool) {
	for _, ni := range n.Nodes {
		if ni.Name == name {
			return ni, true
		}
	}
	return NodeInfo{}, false
}

// LoadNetwork reads dir's NetworkFile.
func LoadNetwork(dir string) (*Network, error) {
	raw, err := os.ReadFile(filepath.Join(dir, NetworkFile))
	if err != nil {
		return nil, fmt.Errorf("testnet: %w", err)
	}
	var n Network
	if err := json.Unmarshal(raw, &n); err != nil {
		return nil, fmt.Errorf("testnet: %s: %w", NetworkFile, err)
	}
	return &n, nil
}

// Init creates a testnet in dir: a key per node, one genesis whose
// validator set is the validators' keys, and a home per node, dir/<name>,
// runnable as it stands with `p2pnode run --home dir/<name>`. Every node
// listens on loopback TCP and QUIC at free ports, bootstraps to every
// validator but itself and serves its API and admin API on free loopback
// ports. Init writes dir/testnet.json and returns its content. The ports
// are free when Init looks; a process that takes one before the node
// starts makes that node fail to start.
func Init(dir string, o Options) (*Network, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.ChainID == "" {
		o.ChainID = DefaultChainID
	}
	type plan struct {
		info NodeInfo
		key  crypto.PrivKey
		p2p  int
	}
	total := o.Validators + o.Fullnodes
	ports, err := freePorts(3 * total)
	if err != nil {
		return nil, err
	}
	plans := make([]plan, total)
	var vals []chain.Validator
	for i := range plans {
		p := &plans[i]
		role, idx := RoleValidator, i
		if i >= o.Validators {
			role, idx = RoleFullnode, i-o.Validators
		}
		if p.key, _, err = crypto.GenerateEd25519Key(crand.Reader); err != nil {
			return nil, fmt.Errorf("testnet: generate key: %w", err)
		}
		id, err := peer.IDFromPrivateKey(p.key)
		if err != nil {
			return nil, fmt.Errorf("testnet: peer id: %w", err)
		}
		name := role + strconv.Itoa(idx)
		home := filepath.Join(dir, name)
		p.p2p = ports[3*i]
		p.info = NodeInfo{
			Name:   name,
			Role:   role,
			PeerID: id.String(),
			Multiaddrs: []string{
				fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", p.p2p, id),
				fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1/p2p/%s", p.p2p, id),
			},
			API:   fmt.Sprintf("http://127.0.0.1:%d", ports[3*i+1]),
			Admin: fmt.Sprintf("http://127.0.0.1:%d", ports[3*i+2]),
			Home:  home,
			Log:   filepath.Join(home, LogFile),
		}
		if role == RoleValidator {
			vals = append(vals, chain.Validator{ID: id, Power: 1})
		}
	}
	set, err := chain.NewValidatorSet(1, vals)
	if err != nil {
		return nil, fmt.Errorf("testnet: validator set: %w", err)
	}
	g := &chain.Genesis{ChainID: o.ChainID, TimestampUsecs: uint64(time.Now().UnixMicro()), Validators: set}

	net := &Network{ChainID: o.ChainID}
	for i := range plans {
		p := &plans[i]
		c := o.Config
		c.Name = p.info.Name
		c.Listen = []string{
			fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", p.p2p),
			fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", p.p2p),
		}
		c.Bootstrap = []string{}
		for j := range o.Validators {
			if j != i {
				c.Bootstrap = append(c.Bootstrap, plans[j].info.Multiaddrs[0])
			}
		}
		c.API = hostPort(p.info.API)
		c.Admin = hostPort(p.info.Admin)
		c.Seed = uint64(i + 1)
		if w, ok := o.PruneWindows[p.info.Name]; ok {
			c.PruneWindow = w
		}
		if p.info.Role == RoleFullnode {
			c.TxRate = 0
		}
		if err := WriteHome(p.info.Home, p.key, g, c); err != nil {
			return nil, err
		}
		net.Nodes = append(net.Nodes, p.info)
	}
	if err := writeJSON(filepath.Join(dir, NetworkFile), net); err != nil {
		return nil, err
	}
	if err := writePrometheusTargets(dir, net); err != nil {
		return nil, err
	}
	return net, nil
}

// hostPort strips the scheme of an http URL.
func hostPort(url string) string { return url[len("http://"):] }

// freePorts returns n distinct loopback ports that are free for both TCP
// and UDP right now.
func freePorts(n int) ([]int, error) {
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	var ports []int
	for attempts := 0; len(ports) < n; attempts++ {
		if attempts > 10*n+100 {
			return nil, errors.New("testnet: cannot find free loopback ports")
		}
		tl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("testnet: find a free port: %w", err)
		}
		port := tl.Addr().(*net.TCPAddr).Port
		ul, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil { // taken for UDP: try another
			_ = tl.Close()
			continue
		}
		closers = append(closers, func() { _ = tl.Close(); _ = ul.Close() })
		ports = append(ports, port)
	}
	return ports, nil
}
