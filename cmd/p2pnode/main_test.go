package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string // substring; "" means stdout must be empty
		wantStderr string // substring; "" means stderr must be empty
	}{
		{name: "no args", args: nil, wantCode: 2, wantStderr: "Usage: p2pnode"},
		{name: "help", args: []string{"help"}, wantCode: 0, wantStdout: "Usage: p2pnode"},
		{name: "-h", args: []string{"-h"}, wantCode: 0, wantStdout: "Usage: p2pnode"},
		{name: "--help", args: []string{"--help"}, wantCode: 0, wantStdout: "Usage: p2pnode"},
		{name: "init", args: []string{"init"}, wantCode: 2, wantStderr: "p2pnode: init: not available in this build yet\n"},
		{name: "run", args: []string{"run"}, wantCode: 2, wantStderr: "p2pnode: run: not available in this build yet\n"},
		{name: "testnet", args: []string{"testnet"}, wantCode: 2, wantStderr: "p2pnode: testnet: not available in this build yet\n"},
		{name: "status", args: []string{"status", "--addr", "x"}, wantCode: 2, wantStderr: "p2pnode: status: not available in this build yet\n"},
		{name: "bench", args: []string{"bench"}, wantCode: 2, wantStderr: "p2pnode: bench: not available in this build yet\n"},
		{name: "unknown", args: []string{"frobnicate"}, wantCode: 2, wantStderr: "p2pnode: frobnicate: not available in this build yet\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("run(%q) = %d, want %d", tt.args, code, tt.wantCode)
			}
			checkOutput(t, "stdout", stdout.String(), tt.wantStdout)
			checkOutput(t, "stderr", stderr.String(), tt.wantStderr)
		})
	}
}

func checkOutput(t *testing.T, name, got, want string) {
	t.Helper()
	if want == "" {
		if got != "" {
			t.Errorf("%s = %q, want empty", name, got)
		}
		return
	}
	if !strings.Contains(got, want) {
		t.Errorf("%s = %q, want it to contain %q", name, got, want)
	}
}
