package consensus

import (
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		ok   bool
	}{
		{"default", func(*Config) {}, true},
		{"zero round timeout", func(c *Config) { c.RoundTimeout = 0 }, false},
		{"max below base", func(c *Config) { c.MaxRoundTimeout = c.RoundTimeout / 2 }, false},
		{"too many txs", func(c *Config) { c.MaxBlockTxs = 1 << 30 }, false},
		{"negative bytes", func(c *Config) { c.MaxBlockBytes = -1 }, false},
		{"empty blocks", func(c *Config) { c.MaxBlockTxs, c.MaxBlockBytes = 0, 0 }, true},
		{"no vote queue", func(c *Config) { c.VoteQueue = 0 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(&c)
			if err := c.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestRoundTimeoutBackoff(t *testing.T) {
	c := DefaultConfig()
	for k, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second} {
		if got := c.roundTimeout(uint64(k)); got != want {
			t.Errorf("roundTimeout(%d) = %v, want %v", k, got, want)
		}
	}
	if got := c.roundTimeout(1 << 62); got != c.MaxRoundTimeout {
		t.Errorf("roundTimeout(2^62) = %v, want the cap", got)
	}
	c.MaxRoundTimeout = 1<<63 - 1
	if got := c.roundTimeout(1 << 62); got != c.MaxRoundTimeout {
		t.Errorf("roundTimeout(2^62) with the largest cap = %v, want the cap", got)
	}
}
