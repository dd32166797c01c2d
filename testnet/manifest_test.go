package testnet_test

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/p2pnode/p2pnode/testnet"
)

func TestDecodeManifest(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		wantErr error
	}{
		{name: "minimal", json: `{"nodes": [{"role": "validator"}]}`},
		{name: "named", json: `{"nodes": [{"name": "validator0", "role": "validator"}, {"name": "fullnode0", "role": "fullnode", "start_delay": "5s"}]}`},
		{name: "stages", json: `{"nodes": [{"role": "validator"}], "stages": [{"name": "s", "perturb": [{"op": "kill", "node": "validator0"}, {"op": "wait", "rounds": 3}]}]}`},
		{name: "not json", json: `nodes`, wantErr: testnet.ErrBadManifest},
		{name: "unknown field", json: `{"nodes": [{"role": "validator"}], "validator": 4}`, wantErr: testnet.ErrBadManifest},
		{name: "unknown config field", json: `{"nodes": [{"role": "validator"}], "config": {"rounds": 1}}`, wantErr: testnet.ErrBadManifest},
		{name: "trailing data", json: `{"nodes": [{"role": "validator"}]} {}`, wantErr: testnet.ErrBadManifest},
		{name: "no validator", json: `{"nodes": [{"role": "fullnode"}]}`, wantErr: testnet.ErrBadManifest},
		{name: "bad role", json: `{"nodes": [{"role": "leader"}]}`, wantErr: testnet.ErrBadManifest},
		{name: "wrong name", json: `{"nodes": [{"name": "v0", "role": "validator"}]}`, wantErr: testnet.ErrBadManifest},
		{name: "validator after full node", json: `{"nodes": [{"role": "validator"}, {"role": "fullnode"}, {"role": "validator"}]}`, wantErr: testnet.ErrBadManifest},
		{name: "negative delay", json: `{"nodes": [{"role": "validator", "start_delay": "-1s"}]}`, wantErr: testnet.ErrBadManifest},
		{name: "bad duration", json: `{"nodes": [{"role": "validator", "start_delay": 5}]}`, wantErr: testnet.ErrBadManifest},
		{name: "unknown op", json: `{"nodes": [{"role": "validator"}], "stages": [{"perturb": [{"op": "crash", "node": "validator0"}]}]}`, wantErr: testnet.ErrBadManifest},
		{name: "unknown node", json: `{"nodes": [{"role": "validator"}], "stages": [{"perturb": [{"op": "kill", "node": "validator1"}]}]}`, wantErr: testnet.ErrBadManifest},
		{name: "wait without rounds", json: `{"nodes": [{"role": "validator"}], "stages": [{"perturb": [{"op": "wait"}]}]}`, wantErr: testnet.ErrBadManifest},
		{name: "zero check timeout", json: `{"nodes": [{"role": "validator"}], "check_timeout": "0s"}`, wantErr: testnet.ErrBadManifest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := testnet.DecodeManifest([]byte(tt.json))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("DecodeManifest: %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestDecodeManifestKeepsDefaults(t *testing.T) {
	m, err := testnet.DecodeManifest([]byte(`{"nodes": [{"role": "validator"}, {"role": "fullnode", "start_delay": "2s"}], "config": {"round_timeout": "250ms"}}`))
	if err != nil {
		t.Fatal(err)
	}
	def := testnet.DefaultManifest(1, 1, 0)
	if got := time.Duration(m.Config.RoundTimeout); got != 250*time.Millisecond {
		t.Errorf("round timeout %v, want 250ms", got)
	}
	if m.Config.FastForwardRounds != def.Config.FastForwardRounds || m.Config.TxRate != def.Config.TxRate || m.CheckTimeout != def.CheckTimeout {
		t.Errorf("defaults lost: %+v", m)
	}
	if got, want := m.Names(), []string{"validator0", "fullnode0"}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("names %v, want %v", got, want)
	}
	if v, f := m.Counts(); v != 1 || f != 1 {
		t.Errorf("counts %d, %d, want 1, 1", v, f)
	}
}

func TestSoakManifestIsValid(t *testing.T) {
	raw, err := os.ReadFile("testdata/soak.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testnet.DecodeManifest(raw); err != nil {
		t.Fatal(err)
	}
}

func FuzzDecodeManifest(f *testing.F) {
	raw, err := os.ReadFile("testdata/soak.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add([]byte(`{"nodes": [{"role": "validator"}]}`))
	f.Add([]byte(`{"nodes": [{"role": "fullnode", "start_delay": "1h"}], "stages": [{}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := testnet.DecodeManifest(data)
		if err != nil {
			if !errors.Is(err, testnet.ErrBadManifest) {
				t.Fatalf("error %v does not wrap ErrBadManifest", err)
			}
			return
		}
		if len(m.Names()) != len(m.Nodes) {
			t.Fatalf("%d names for %d nodes", len(m.Names()), len(m.Nodes))
		}
	})
}
