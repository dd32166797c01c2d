package testnet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/node"
)

// The files of a node's home directory.
const (
	// KeyFile holds the node's libp2p private key (crypto.MarshalPrivateKey),
	// mode 0600.
	KeyFile = "node.key"
	// GenesisFile holds the chain's genesis as a GenesisDoc.
	GenesisFile = "genesis.json"
	// ConfigFile holds the node's HomeConfig.
	ConfigFile = "config.json"
	// LogFile is where the testnet runner writes the node's log lines.
	LogFile = "node.log"
)

// ErrBadHome is the reason of every error about a home's files: missing,
// unreadable or invalid.
var ErrBadHome = errors.New("testnet: invalid home")

// Duration is a time.Duration written in JSON as a string ("1.5s").
type Duration time.Duration

// MarshalJSON writes d as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a string such as "300ms".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"1s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// HomeConfig is a node's config file (config.json). Fields missing from
// the file keep their DefaultHomeConfig value; unknown fields are an error.
type HomeConfig struct {
	// Name is the node's name in its testnet (validator0, fullnode0, ...).
	Name string `json:"name,omitempty"`
	// Listen are the libp2p multiaddrs the node listens on.
	Listen []string `json:"listen"`
	// Bootstrap are the multiaddrs, ending in /p2p/<peer id>, of the peers
	// the node keeps connected.
	Bootstrap []string `json:"bootstrap"`
	// API is the HTTP API's host:port; "" disables it.
	API string `json:"api"`
	// Admin is the admin API's host:port (loopback only); "" disables it.
	Admin string `json:"admin"`
	// TxRate is the load generator's transactions per second; 0 disables it.
	TxRate float64 `json:"tx_rate"`
	// TxSize is the size of a generated transaction's value in bytes.
	TxSize int `json:"tx_size"`
	// Seed seeds the load generator and the syncer's choice of peers.
	Seed uint64 `json:"seed"`
	// RoundTimeout and MaxRoundTimeout bound a consensus round's timeout.
	RoundTimeout    Duration `json:"round_timeout"`
	MaxRoundTimeout Duration `json:"max_round_timeout"`
	// FastForwardRounds: the node state-syncs instead of fetching blocks
	// when it is more than this many rounds behind.
	FastForwardRounds uint64 `json:"fast_forward_rounds"`
	// ChunkTxs is how many transactions one state-sync chunk holds.
	ChunkTxs int `json:"chunk_txs"`
	// SnapshotSync: a fast-forward of a node at genesis restores the
	// target's state snapshot instead of replaying the transactions.
	SnapshotSync bool `json:"snapshot_sync"`
	// StateChunkLeaves is how many state leaves one snapshot chunk holds.
	StateChunkLeaves int `json:"state_chunk_leaves"`
	// ProgressInterval is how often a state sync logs its progress.
	ProgressInterval Duration `json:"progress_interval"`
	// SyncInfoInterval is how often the node gossips its SyncInfo.
	SyncInfoInterval Duration `json:"sync_info_interval"`
	// SyncTimeout is the deadline of one sync.
	SyncTimeout Duration `json:"sync_timeout"`
	// ReconnectMin and ReconnectMax bound the backoff between two attempts
	// to reach a bootstrap peer.
	ReconnectMin Duration `json:"reconnect_min"`
	ReconnectMax Duration `json:"reconnect_max"`
	// ReadyRounds is how many rounds the node may trail the best peer and
	// still answer GET /health with ready.
	ReadyRounds uint64 `json:"ready_rounds"`
	// PruneWindow, if not 0, is how many committed versions of history the
	// node keeps (node.Config.PruneWindow).
	PruneWindow uint64 `json:"prune_window"`
	// PruneInterval is how often a node with a PruneWindow prunes.
	PruneInterval Duration `json:"prune_interval"`
}

// DefaultHomeConfig returns node.DefaultConfig's values, the API and admin
// off, and no peers.
func DefaultHomeConfig() HomeConfig {
	d := node.DefaultConfig()
	var listen []string
	for _, a := range d.ListenAddrs {
		listen = append(listen, a.String())
	}
	return HomeConfig{
		Listen:            listen,
		Bootstrap:         []string{},
		TxSize:            d.TxSize,
		Seed:              d.Seed,
		RoundTimeout:      Duration(d.Consensus.RoundTimeout),
		MaxRoundTimeout:   Duration(d.Consensus.MaxRoundTimeout),
		FastForwardRounds: d.Syncer.FastForwardRounds,
		ChunkTxs:          d.Syncer.ChunkTxs,
		SnapshotSync:      d.Syncer.SnapshotSync,
		StateChunkLeaves:  d.Syncer.StateChunkLeaves,
		ProgressInterval:  Duration(d.Syncer.ProgressInterval),
		SyncInfoInterval:  Duration(d.SyncInfoInterval),
		SyncTimeout:       Duration(d.SyncTimeout),
		ReconnectMin:      Duration(d.ReconnectMin),
		ReconnectMax:      Duration(d.ReconnectMax),
		ReadyRounds:       d.ReadyRounds,
		PruneInterval:     Duration(d.PruneInterval),
	}
}

// DecodeHomeConfig reads a config file over DefaultHomeConfig.
func DecodeHomeConfig(data []byte) (HomeConfig, error) {
	c := DefaultHomeConfig()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return HomeConfig{}, fmt.Errorf("%w: %s: %w", ErrBadHome, ConfigFile, err)
	}
	if dec.More() {
		return HomeConfig{}, fmt.Errorf("%w: %s: data after the JSON object", ErrBadHome, ConfigFile)
	}
	return c, nil
}

// Apply sets cfg's fields from c; it parses the multiaddrs. cfg.Validate
// checks the values.
func (c *HomeConfig) Apply(cfg *node.Config) error {
	cfg.ListenAddrs = cfg.ListenAddrs[:0:0]
	for _, s := range c.Listen {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return fmt.Errorf("%w: listen address %q: %w", ErrBadHome, s, err)
		}
		cfg.ListenAddrs = append(cfg.ListenAddrs, a)
	}
	var boot []ma.Multiaddr
	for _, s := range c.Bootstrap {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return fmt.Errorf("%w: bootstrap address %q: %w", ErrBadHome, s, err)
		}
		boot = append(boot, a)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(boot...)
	if err != nil {
		return fmt.Errorf("%w: bootstrap addresses must end in /p2p/<peer id>: %w", ErrBadHome, err)
	}
	cfg.Bootstrap = infos
	cfg.APIAddr = c.API
	cfg.TxRate = c.TxRate
	cfg.TxSize = c.TxSize
	cfg.Seed = c.Seed
	cfg.Consensus.RoundTimeout = time.Duration(c.RoundTimeout)
	cfg.Consensus.MaxRoundTimeout = time.Duration(c.MaxRoundTimeout)
	cfg.Syncer.FastForwardRounds = c.FastForwardRounds
	cfg.Syncer.ChunkTxs = c.ChunkTxs
	cfg.Syncer.SnapshotSync = c.SnapshotSync
	cfg.Syncer.StateChunkLeaves = c.StateChunkLeaves
	cfg.Syncer.ProgressInterval = time.Duration(c.ProgressInterval)
	cfg.SyncInfoInterval = time.Duration(c.SyncInfoInterval)
	cfg.SyncTimeout = time.Duration(c.SyncTimeout)
	cfg.ReconnectMin = time.Duration(c.ReconnectMin)
	cfg.ReconnectMax = time.Duration(c.ReconnectMax)
	cfg.ReadyRounds = c.ReadyRounds
	cfg.PruneWindow = c.PruneWindow
	cfg.PruneInterval = time.Duration(c.PruneInterval)
	return nil
}

// GenesisDoc is the genesis file (genesis.json): the readable form of a
// chain.Genesis. docs/protocol.md section 3.1 maps it field by field to the
// genesis's CBOR: timestamp (RFC 3339, whole microseconds, any offset) to
// µs since the Unix epoch, epoch and validators to the validator set, each
// id (a peer id string) to its multihash bytes, sorted by those bytes.
type GenesisDoc struct {
	ChainID    string             `json:"chain_id"`
	Timestamp  time.Time          `json:"timestamp"`
	Epoch      uint64             `json:"epoch"`
	Validators []GenesisValidator `json:"validators"`
}

// GenesisValidator is one member of a GenesisDoc's validator set.
type GenesisValidator struct {
	ID    string `json:"id"`
	Power uint64 `json:"power"`
}

// NewGenesisDoc returns the document of g.
func NewGenesisDoc(g *chain.Genesis) GenesisDoc {
	d := GenesisDoc{
		ChainID:   g.ChainID,
		Timestamp: time.UnixMicro(int64(g.TimestampUsecs)).UTC(),
		Epoch:     g.Validators.Epoch(),
	}
	for _, v := range g.Validators.Validators() {
		d.Validators = append(d.Validators, GenesisValidator{ID: v.ID.String(), Power: v.Power})
	}
	return d
}

// Genesis returns the chain.Genesis d describes, validated.
func (d *GenesisDoc) Genesis() (*chain.Genesis, error) {
	vals := make([]chain.Validator, 0, len(d.Validators))
	for _, v := range d.Validators {
		id, err := peer.Decode(v.ID)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: validator id %q: %w", ErrBadHome, GenesisFile, v.ID, err)
		}
		vals = append(vals, chain.Validator{ID: id, Power: v.Power})
	}
	set, err := chain.NewValidatorSet(d.Epoch, vals)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadHome, GenesisFile, err)
	}
	if d.Timestamp.Before(time.Unix(0, 0)) {
		return nil, fmt.Errorf("%w: %s: timestamp before 1970", ErrBadHome, GenesisFile)
	}
	if d.Timestamp.Nanosecond()%1000 != 0 {
		// The chain counts µs: a finer timestamp would be rounded, and two
		// readers of the file could round it differently.
		return nil, fmt.Errorf("%w: %s: timestamp finer than a microsecond", ErrBadHome, GenesisFile)
	}
	g := &chain.Genesis{ChainID: d.ChainID, TimestampUsecs: uint64(d.Timestamp.UnixMicro()), Validators: set}
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadHome, GenesisFile, err)
	}
	return g, nil
}

// DecodeGenesisDoc reads a genesis file and returns its chain.Genesis.
func DecodeGenesisDoc(data []byte) (*chain.Genesis, error) {
	var d GenesisDoc
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadHome, GenesisFile, err)
	}
	return d.Genesis()
}

// Home is a node's home directory, loaded.
type Home struct {
	Dir     string
	Config  HomeConfig
	Genesis *chain.Genesis
	Key     crypto.PrivKey
}

// LoadHome reads the key, genesis and config files of the home dir.
func LoadHome(dir string) (*Home, error) {
	h := &Home{Dir: dir}
	raw, err := os.ReadFile(filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadHome, err)
	}
	if h.Key, err = crypto.UnmarshalPrivateKey(raw); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadHome, KeyFile, err)
	}
	if raw, err = os.ReadFile(filepath.Join(dir, GenesisFile)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadHome, err)
	}
	if h.Genesis, err = DecodeGenesisDoc(raw); err != nil {
		return nil, err
	}
	if raw, err = os.ReadFile(filepath.Join(dir, ConfigFile)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadHome, err)
	}
	if h.Config, err = DecodeHomeConfig(raw); err != nil {
		return nil, err
	}
	return h, nil
}

// NodeConfig returns the node.Config of h: node.DefaultConfig with the
// home's key, genesis and config applied. It does not validate it.
func (h *Home) NodeConfig() (node.Config, error) {
	cfg := node.DefaultConfig()
	cfg.Home = h.Dir
	cfg.Genesis = h.Genesis
	cfg.Key = h.Key
	if err := h.Config.Apply(&cfg); err != nil {
		return node.Config{}, err
	}
	return cfg, nil
}

// WriteHome creates dir and writes the key (mode 0600), genesis and
// config files into it.
func WriteHome(dir string, key crypto.PrivKey, g *chain.Genesis, c HomeConfig) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("testnet: create home: %w", err)
	}
	raw, err := crypto.MarshalPrivateKey(key)
	if err != nil {
		return fmt.Errorf("testnet: marshal key: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, KeyFile), raw, 0o600); err != nil {
		return fmt.Errorf("testnet: write key: %w", err)
	}
	if err := writeJSON(filepath.Join(dir, GenesisFile), NewGenesisDoc(g)); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, ConfigFile), c)
}

// writeJSON writes v, indented, to path (mode 0644).
func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("testnet: encode %s: %w", filepath.Base(path), err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("testnet: write %s: %w", filepath.Base(path), err)
	}
	return nil
}
