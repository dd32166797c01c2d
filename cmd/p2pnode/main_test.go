package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2pnode/p2pnode/testnet"
)

func TestRun(t *testing.T) {
	initDir := filepath.Join(t.TempDir(), "net")
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string // substring; "" means no check
		wantStderr string // substring; "" means no check
	}{
		{name: "no args", args: nil, wantCode: 2, wantStderr: "Usage: p2pnode"},
		{name: "help", args: []string{"help"}, wantCode: 0, wantStdout: "Usage: p2pnode"},
		{name: "--help", args: []string{"--help"}, wantCode: 0, wantStdout: "Commands:"},
		{name: "unknown", args: []string{"frobnicate"}, wantCode: 2, wantStderr: `unknown command "frobnicate"`},
		{name: "init help", args: []string{"init", "--help"}, wantCode: 0, wantStderr: "-validators"},
		{name: "run help", args: []string{"run", "--help"}, wantCode: 0, wantStderr: "-bootstrap"},
		{name: "testnet help", args: []string{"testnet", "--help"}, wantCode: 0, wantStderr: "-late-join"},
		{name: "status help", args: []string{"status", "-h"}, wantCode: 0, wantStderr: "-api"},
		{name: "init without home", args: []string{"init"}, wantCode: 2, wantStderr: "--home is required"},
		{name: "init bad flag", args: []string{"init", "--nodes", "3"}, wantCode: 2, wantStderr: "flag provided but not defined"},
		{name: "init positional", args: []string{"init", "--home", initDir, "extra"}, wantCode: 2, wantStderr: `unexpected argument "extra"`},
		{name: "init zero validators", args: []string{"init", "--home", initDir, "--validators", "0"}, wantCode: 1, wantStderr: "invalid options"},
		{name: "run without home", args: []string{"run"}, wantCode: 2, wantStderr: "--home is required"},
		{name: "run missing home", args: []string{"run", "--home", filepath.Join(t.TempDir(), "none")}, wantCode: 1, wantStderr: "p2pnode run: testnet: invalid home"},
		{name: "status without target", args: []string{"status"}, wantCode: 2, wantStderr: "--api or --home is required"},
		{name: "status unreachable", args: []string{"status", "--api", "http://127.0.0.1:1"}, wantCode: 1, wantStderr: "p2pnode status:"},
		{name: "testnet manifest and size", args: []string{"testnet", "--manifest", "x.json", "--validators", "3"}, wantCode: 2, wantStderr: "do not apply"},
		{name: "testnet missing manifest", args: []string{"testnet", "--manifest", filepath.Join(t.TempDir(), "none.json")}, wantCode: 1, wantStderr: "p2pnode testnet:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), tt.args, &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("run(%q) = %d, want %d; stderr:\n%s", tt.args, code, tt.wantCode, stderr.String())
			}
			checkOutput(t, "stdout", stdout.String(), tt.wantStdout)
			checkOutput(t, "stderr", stderr.String(), tt.wantStderr)
		})
	}
}

func checkOutput(t *testing.T, name, got, want string) {
	t.Helper()
	if want != "" && !strings.Contains(got, want) {
		t.Errorf("%s = %q, want it to contain %q", name, got, want)
	}
}

// TestInitThenBadConfig: init writes homes that load; a home whose config
// names an invalid value makes run exit with status 1 and say why.
func TestInitThenBadConfig(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "net")
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"init", "--home", dir, "--validators", "2", "--fullnodes", "1", "--chain-id", "demo"}, &stdout, &stderr); code != 0 {
		t.Fatalf("init: status %d: %s", code, stderr.String())
	}
	for _, name := range []string{"validator0", "validator1", "fullnode0"} {
		if !strings.Contains(stdout.String(), name) {
			t.Errorf("init's output does not name %s:\n%s", name, stdout.String())
		}
		if _, err := testnet.LoadHome(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	// A second init into the same directory refuses to overwrite keys.
	stderr.Reset()
	if code := run(t.Context(), []string{"init", "--home", dir}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "not empty") {
		t.Fatalf("second init: status %d, stderr %q", code, stderr.String())
	}

	home := filepath.Join(dir, "validator0")
	cfgPath := filepath.Join(home, testnet.ConfigFile)
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, from, to, args, want string
	}{
		{name: "zero round timeout", from: `"round_timeout": "1s"`, to: `"round_timeout": "0s"`, want: "node: invalid config"},
		{name: "unknown field", from: `"tx_rate"`, to: `"tx_rates"`, want: `unknown field "tx_rates"`},
		{name: "bad listen flag", args: "--listen /ip4/nowhere", want: "listen address"},
		{name: "admin not on loopback", args: "--admin 0.0.0.0:0", want: "not a loopback address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := string(raw)
			if tt.from != "" {
				if !strings.Contains(bad, tt.from) {
					t.Fatalf("config has no %s:\n%s", tt.from, raw)
				}
				bad = strings.Replace(bad, tt.from, tt.to, 1)
			}
			if err := os.WriteFile(cfgPath, []byte(bad), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.WriteFile(cfgPath, raw, 0o644) })
			args := append([]string{"run", "--home", home}, strings.Fields(tt.args)...)
			var stdout, stderr bytes.Buffer
			if code := run(t.Context(), args, &stdout, &stderr); code != 1 {
				t.Fatalf("run: status %d, want 1; stderr:\n%s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("stderr %q, want it to contain %q", stderr.String(), tt.want)
			}
		})
	}
}
