package testnet_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/testnet"
)

func TestInitWritesRunnableHomes(t *testing.T) {
	dir := t.TempDir()
	m := testnet.DefaultManifest(3, 2, 0)
	net, err := testnet.Init(dir, testnet.Options{Validators: 3, Fullnodes: 2, ChainID: "init-test", Config: m.Config})
	if err != nil {
		t.Fatal(err)
	}
	onDisk, err := testnet.LoadNetwork(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(onDisk, net) {
		t.Fatalf("testnet.json %+v, want %+v", onDisk, net)
	}
	wantNames := []string{"validator0", "validator1", "validator2", "fullnode0", "fullnode1"}
	if len(net.Nodes) != len(wantNames) {
		t.Fatalf("%d nodes, want %d", len(net.Nodes), len(wantNames))
	}
	var genesisHash string
	for i, ni := range net.Nodes {
		if ni.Name != wantNames[i] || ni.Home != filepath.Join(dir, ni.Name) {
			t.Fatalf("node %d: %+v", i, ni)
		}
		fi, err := os.Stat(filepath.Join(ni.Home, testnet.KeyFile))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: key file mode %v, want 0600", ni.Name, fi.Mode().Perm())
		}
		h, err := testnet.LoadHome(ni.Home)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := h.NodeConfig()
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s: %v", ni.Name, err)
		}
		id, _ := peer.IDFromPrivateKey(h.Key)
		if id.String() != ni.PeerID {
			t.Errorf("%s: key's peer id %s, testnet.json says %s", ni.Name, id, ni.PeerID)
		}
		if isVal := h.Genesis.Validators.Contains(id); isVal != (ni.Role == testnet.RoleValidator) {
			t.Errorf("%s: in the validator set: %v, role %s", ni.Name, isVal, ni.Role)
		}
		if gh := h.Genesis.Hash().String(); genesisHash == "" {
			genesisHash = gh
		} else if gh != genesisHash {
			t.Errorf("%s: genesis %s, validator0's is %s", ni.Name, gh, genesisHash)
		}
		// Every node bootstraps to every validator but itself.
		wantBoot := 3
		if ni.Role == testnet.RoleValidator {
			wantBoot = 2
		}
		if len(cfg.Bootstrap) != wantBoot {
			t.Errorf("%s: %d bootstrap peers, want %d", ni.Name, len(cfg.Bootstrap), wantBoot)
		}
		for _, b := range cfg.Bootstrap {
			if b.ID == id {
				t.Errorf("%s bootstraps to itself", ni.Name)
			}
		}
		if (ni.Role == testnet.RoleFullnode) != (cfg.TxRate == 0) {
			t.Errorf("%s: tx rate %v", ni.Name, cfg.TxRate)
		}
		if cfg.APIAddr == "" || h.Config.Admin == "" || h.Config.Name != ni.Name {
			t.Errorf("%s: api %q, admin %q, name %q", ni.Name, cfg.APIAddr, h.Config.Admin, h.Config.Name)
		}
	}
}

func TestInitRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		o    testnet.Options
	}{
		{name: "no validator", o: testnet.Options{Validators: 0}},
		{name: "negative full nodes", o: testnet.Options{Validators: 1, Fullnodes: -1}},
		{name: "bad chain id", o: testnet.Options{Validators: 1, ChainID: "a b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := testnet.Init(t.TempDir(), tt.o); !errors.Is(err, testnet.ErrBadOptions) {
				t.Fatalf("Init: %v, want ErrBadOptions", err)
			}
		})
	}
}

func TestGenesisDocRoundTrip(t *testing.T) {
	v := chaintest.NewValidatorsWithPower(3, []uint64{1, 2, 3})
	doc := testnet.NewGenesisDoc(v.Genesis)
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	g, err := testnet.DecodeGenesisDoc(raw)
	if err != nil {
		t.Fatal(err)
	}
	if g.Hash() != v.Genesis.Hash() {
		t.Fatalf("genesis changed through its JSON document:\n%s", raw)
	}
}

func TestDecodeGenesisDocErrors(t *testing.T) {
	id := chaintest.NewValidators(1, 1).Set.IDs()[0].String()
	tests := []struct {
		name, json string
	}{
		{name: "not json", json: `[`},
		{name: "unknown field", json: `{"chain_id": "c", "validators": [{"id": "` + id + `", "power": 1}], "x": 1}`},
		{name: "no validators", json: `{"chain_id": "c", "timestamp": "2026-01-01T00:00:00Z", "validators": []}`},
		{name: "bad id", json: `{"chain_id": "c", "timestamp": "2026-01-01T00:00:00Z", "validators": [{"id": "nope", "power": 1}]}`},
		{name: "zero power", json: `{"chain_id": "c", "timestamp": "2026-01-01T00:00:00Z", "validators": [{"id": "` + id + `", "power": 0}]}`},
		{name: "bad chain id", json: `{"chain_id": "", "timestamp": "2026-01-01T00:00:00Z", "validators": [{"id": "` + id + `", "power": 1}]}`},
		{name: "finer than a microsecond", json: `{"chain_id": "c", "timestamp": "2026-01-01T00:00:00.0000001Z", "validators": [{"id": "` + id + `", "power": 1}]}`},
		{name: "before 1970", json: `{"chain_id": "c", "timestamp": "1969-01-01T00:00:00Z", "validators": [{"id": "` + id + `", "power": 1}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := testnet.DecodeGenesisDoc([]byte(tt.json)); !errors.Is(err, testnet.ErrBadHome) {
				t.Fatalf("DecodeGenesisDoc: %v, want ErrBadHome", err)
			}
		})
	}
}

func TestHomeConfig(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		wantErr error
		check   func(t *testing.T, c testnet.HomeConfig)
	}{
		{name: "empty keeps defaults", json: `{}`, check: func(t *testing.T, c testnet.HomeConfig) {
			if !reflect.DeepEqual(c, testnet.DefaultHomeConfig()) {
				t.Errorf("%+v, want the defaults", c)
			}
		}},
		{name: "durations", json: `{"round_timeout": "250ms", "sync_timeout": "1m"}`, check: func(t *testing.T, c testnet.HomeConfig) {
			if time.Duration(c.RoundTimeout) != 250*time.Millisecond || time.Duration(c.SyncTimeout) != time.Minute {
				t.Errorf("round timeout %v, sync timeout %v", time.Duration(c.RoundTimeout), time.Duration(c.SyncTimeout))
			}
		}},
		{name: "unknown field", json: `{"round_timout": "1s"}`, wantErr: testnet.ErrBadHome},
		{name: "number duration", json: `{"round_timeout": 1}`, wantErr: testnet.ErrBadHome},
		{name: "bad duration", json: `{"round_timeout": "soon"}`, wantErr: testnet.ErrBadHome},
		{name: "trailing data", json: `{} x`, wantErr: testnet.ErrBadHome},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := testnet.DecodeHomeConfig([]byte(tt.json))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("DecodeHomeConfig: %v, want %v", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func TestHomeConfigApplyErrors(t *testing.T) {
	id := chaintest.NewValidators(1, 1).Set.IDs()[0].String()
	tests := []struct {
		name string
		c    testnet.HomeConfig
	}{
		{name: "bad listen", c: testnet.HomeConfig{Listen: []string{"127.0.0.1:4001"}}},
		{name: "bad bootstrap", c: testnet.HomeConfig{Bootstrap: []string{"/ip4/127.0.0.1/tcp"}}},
		{name: "bootstrap without peer id", c: testnet.HomeConfig{Bootstrap: []string{"/ip4/127.0.0.1/tcp/4001"}}},
		{name: "good bootstrap, bad listen", c: testnet.HomeConfig{Bootstrap: []string{"/ip4/127.0.0.1/tcp/4001/p2p/" + id}, Listen: []string{"x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &testnet.Home{Dir: t.TempDir(), Config: tt.c}
			if _, err := h.NodeConfig(); !errors.Is(err, testnet.ErrBadHome) {
				t.Fatalf("NodeConfig: %v, want ErrBadHome", err)
			}
		})
	}
}

func FuzzDecodeHomeConfig(f *testing.F) {
	def, _ := json.Marshal(testnet.DefaultHomeConfig())
	f.Add(def)
	f.Add([]byte(`{"listen": ["/ip4/1.2.3.4/tcp/1"], "round_timeout": "1ms"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := testnet.DecodeHomeConfig(data)
		if err != nil {
			if !errors.Is(err, testnet.ErrBadHome) {
				t.Fatalf("error %v does not wrap ErrBadHome", err)
			}
			return
		}
		// What decodes encodes and decodes to the same value.
		raw, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := testnet.DecodeHomeConfig(raw)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", c, c2)
		}
	})
}

func FuzzDecodeGenesisDoc(f *testing.F) {
	raw, _ := json.Marshal(testnet.NewGenesisDoc(chaintest.NewValidators(1, 4).Genesis))
	f.Add(raw)
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := testnet.DecodeGenesisDoc(data)
		if err != nil {
			if !errors.Is(err, testnet.ErrBadHome) {
				t.Fatalf("error %v does not wrap ErrBadHome", err)
			}
			return
		}
		raw, err := json.Marshal(testnet.NewGenesisDoc(g))
		if err != nil {
			t.Fatal(err)
		}
		g2, err := testnet.DecodeGenesisDoc(raw)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if g2.Hash() != g.Hash() {
			t.Fatal("round trip changed the genesis")
		}
	})
}
