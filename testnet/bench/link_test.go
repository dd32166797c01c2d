package bench

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

func TestParseLink(t *testing.T) {
	tests := []struct {
		in   string
		want Link
		err  error
	}{
		{"", Link{}, nil},
		{"none", Link{}, nil},
		{"150ms/100Mbit", Link{RTT: 150 * time.Millisecond, BitsPerSecond: 100_000_000}, nil},
		{"10ms/1Gbit", Link{RTT: 10 * time.Millisecond, BitsPerSecond: 1_000_000_000}, nil},
		{"50ms/2.5Mbit", Link{RTT: 50 * time.Millisecond, BitsPerSecond: 2_500_000}, nil},
		{"0s/500kbit", Link{BitsPerSecond: 500_000}, nil},
		{"150ms", Link{}, ErrLink},
		{"150/100Mbit", Link{}, ErrLink},
		{"-1ms/100Mbit", Link{}, ErrLink},
		{"11s/100Mbit", Link{}, ErrLink},
		{"150ms/100MB", Link{}, ErrLink},
		{"150ms/10kbit", Link{}, ErrLink},
		{"150ms/Mbit", Link{}, ErrLink},
	}
	for _, tt := range tests {
		got, err := ParseLink(tt.in)
		if !errors.Is(err, tt.err) || got != tt.want {
			t.Errorf("ParseLink(%q) = %+v, %v; want %+v, %v", tt.in, got, err, tt.want, tt.err)
		}
		if err == nil && !got.IsZero() {
			if back, err := ParseLink(got.String()); err != nil || back != got {
				t.Errorf("ParseLink(%q.String() = %q) = %+v, %v", tt.in, got.String(), back, err)
			}
		}
	}
}

// TestRunOverLink runs a block-mode sync with every host on the simulated
// link: the synced state must match, and goodput is reported against the
// link (its value depends on the machine, so only its presence is checked).
func TestRunOverLink(t *testing.T) {
	cfg := tinyConfig(t, ModeBlocks)
	cfg.Blocks = 100
	cfg.SeedBlocks = 0
	cfg.SkipCeiling = true
	cfg.Latency = 0
	cfg.Link = Link{RTT: 10 * time.Millisecond, BitsPerSecond: 100_000_000}
	res, err := Run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	m := checkJSON(t, res)
	if m["link"] != "10ms/100Mbit" || res.LinkRTTMS != 10 || res.LinkMbitPerS != 100 {
		t.Errorf("result echoes link %v, %v ms, %v Mbit/s", m["link"], res.LinkRTTMS, res.LinkMbitPerS)
	}
	if res.PenalisedPeers != 0 {
		t.Errorf("%d honest serving peers penalised", res.PenalisedPeers)
	}
	if res.GoodputBytesPerS <= 0 || res.GoodputFractionOfLink <= 0 {
		t.Errorf("goodput %v B/s, %v of the link; want both > 0", res.GoodputBytesPerS, res.GoodputFractionOfLink)
	}
}
