package node_test

import (
	"errors"
	"testing"

	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/node"
)

func TestConfigValidate(t *testing.T) {
	v := chaintest.NewValidators(71, 4)
	valid := func() node.Config {
		c := node.DefaultConfig()
		c.Home, c.Genesis, c.Key = t.TempDir(), v.Genesis, v.Keys[0]
		return c
	}
	tests := []struct {
		name    string
		change  func(*node.Config)
		wantErr error
	}{
		{"valid", func(*node.Config) {}, nil},
		{"no home", func(c *node.Config) { c.Home = "" }, node.ErrInvalidConfig},
		{"no genesis", func(c *node.Config) { c.Genesis = nil }, node.ErrInvalidConfig},
		{"no key", func(c *node.Config) { c.Key = nil }, node.ErrInvalidConfig},
		{"no listen addrs", func(c *node.Config) { c.ListenAddrs = nil }, node.ErrInvalidConfig},
		{"negative tx rate", func(c *node.Config) { c.TxRate = -1 }, node.ErrInvalidConfig},
		{"tx size too large", func(c *node.Config) { c.TxRate, c.TxSize = 1, 1<<20 }, node.ErrInvalidConfig},
		{"no sync info interval", func(c *node.Config) { c.SyncInfoInterval = 0 }, node.ErrInvalidConfig},
		{"bad syncer", func(c *node.Config) { c.Syncer.ChunkTxs = 0 }, node.ErrInvalidConfig},
		{"bad consensus", func(c *node.Config) { c.Consensus.RoundTimeout = 0 }, node.ErrInvalidConfig},
		{"bad mempool", func(c *node.Config) { c.Mempool.MaxTxs = 0 }, node.ErrInvalidConfig},
		{"small block responses", func(c *node.Config) { c.Limits.MaxBlockResponseBytes = 1 << 20 }, node.ErrInvalidConfig},
		{"reconnect backwards", func(c *node.Config) { c.ReconnectMax = c.ReconnectMin / 2 }, node.ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.change(&c)
			if err := c.Validate(); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Validate() = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				if _, err := node.New(c); !errors.Is(err, tt.wantErr) {
					t.Fatalf("New = %v, want %v", err, tt.wantErr)
				}
			}
		})
	}
}
