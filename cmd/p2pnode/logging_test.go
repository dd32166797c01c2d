package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"testing"
)

func TestErrorTextLogsMessages(t *testing.T) {
	var buf bytes.Buffer
	base := errors.New("base")
	log := slog.New(errorText{slog.NewJSONHandler(&buf, nil)}).With("logger", "p2pnode/test", "cause", base)
	log.Info("failed", "err", fmt.Errorf("wrapped: %w", base), slog.Group("g", "err", base), "n", 3)
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"logger": "p2pnode/test", "cause": "base", "err": "wrapped: base", "g": map[string]any{"err": "base"}, "n": 3.0}
	for k, v := range want {
		if fmt.Sprint(got[k]) != fmt.Sprint(v) {
			t.Errorf("%s = %v, want %v (line %s)", k, got[k], v, buf.String())
		}
	}
}
