package node_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/node"
)

func tx(i int) []byte { return fmt.Appendf(nil, "tx-%04d", i) }

func txs(from, to int) [][]byte {
	var out [][]byte
	for i := from; i < to; i++ {
		out = append(out, tx(i))
	}
	return out
}

func smallPool(maxTxs, maxBytes int) *node.Mempool {
	cfg := node.DefaultMempoolConfig()
	cfg.MaxTxs, cfg.MaxBytes, cfg.Recent = maxTxs, maxBytes, 4
	return node.NewMempool(cfg)
}

func TestMempoolAdd(t *testing.T) {
	tests := []struct {
		name    string
		pool    func() *node.Mempool
		pre     [][]byte
		tx      []byte
		wantErr error
	}{
		{"fresh", func() *node.Mempool { return smallPool(4, 1<<20) }, nil, tx(1), nil},
		{"empty", func() *node.Mempool { return smallPool(4, 1<<20) }, nil, []byte{}, node.ErrTxSize},
		{"too large", func() *node.Mempool { return smallPool(4, 1<<20) }, nil, make([]byte, chain.MaxTxSize+1), node.ErrTxSize},
		{"largest", func() *node.Mempool { return smallPool(4, 1<<20) }, nil, make([]byte, chain.MaxTxSize), nil},
		{"duplicate", func() *node.Mempool { return smallPool(4, 1<<20) }, txs(1, 2), tx(1), node.ErrDuplicateTx},
		{"count full", func() *node.Mempool { return smallPool(2, 1<<20) }, txs(0, 2), tx(3), node.ErrMempoolFull},
		{"bytes full", func() *node.Mempool { return smallPool(100, chain.MaxTxSize) }, [][]byte{make([]byte, chain.MaxTxSize-3)}, tx(3), node.ErrMempoolFull},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.pool()
			for _, p := range tt.pre {
				if err := m.Add(p); err != nil {
					t.Fatal(err)
				}
			}
			if err := m.Add(tt.tx); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Add = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestMempoolPullFIFOAndBounds(t *testing.T) {
	m := smallPool(100, 1<<20)
	for _, x := range txs(0, 10) {
		if err := m.Add(x); err != nil {
			t.Fatal(err)
		}
	}
	if got := m.Pull(3, 1<<20); !slices.EqualFunc(got, txs(0, 3), slices.Equal) {
		t.Fatalf("Pull(3) = %q, want %q", got, txs(0, 3))
	}
	// Each tx is 7 bytes: 20 bytes hold two.
	if got := m.Pull(10, 20); !slices.EqualFunc(got, txs(3, 5), slices.Equal) {
		t.Fatalf("Pull(10, 20 bytes) = %q, want %q", got, txs(3, 5))
	}
	if m.Len() != 10 {
		t.Fatalf("Len = %d, want 10: pulled txs stay until committed", m.Len())
	}
	if err := m.Add(tx(1)); !errors.Is(err, node.ErrDuplicateTx) {
		t.Fatalf("re-adding a pulled tx: %v, want ErrDuplicateTx", err)
	}
}

func TestMempoolRemoveCommitted(t *testing.T) {
	m := smallPool(100, 1<<20)
	for _, x := range txs(0, 6) {
		if err := m.Add(x); err != nil {
			t.Fatal(err)
		}
	}
	m.Pull(2, 1<<20)
	m.Remove(txs(0, 3)) // two in flight, one ready
	if m.Len() != 3 || m.Bytes() != 21 {
		t.Fatalf("Len %d, Bytes %d; want 3, 21", m.Len(), m.Bytes())
	}
	if got := m.Pull(10, 1<<20); !slices.EqualFunc(got, txs(3, 6), slices.Equal) {
		t.Fatalf("Pull = %q, want %q", got, txs(3, 6))
	}
	if err := m.Add(tx(2)); !errors.Is(err, node.ErrDuplicateTx) {
		t.Fatalf("re-adding a committed tx: %v, want ErrDuplicateTx", err)
	}
	// Only the last Recent (4) committed hashes are remembered.
	m.Remove(txs(100, 104))
	if err := m.Add(tx(0)); err != nil {
		t.Fatalf("re-adding a long-forgotten tx: %v", err)
	}
}

func TestMempoolInFlightTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := node.DefaultMempoolConfig()
		cfg.InFlightTimeout = 10 * time.Second
		m := node.NewMempool(cfg)
		for _, x := range txs(0, 4) {
			if err := m.Add(x); err != nil {
				t.Fatal(err)
			}
		}
		m.Pull(2, 1<<20)
		m.MarkInFlight(txs(3, 4)) // proposed by another validator
		time.Sleep(5 * time.Second)
		if got := m.Pull(10, 1<<20); !slices.EqualFunc(got, txs(2, 3), slices.Equal) {
			t.Fatalf("Pull before the timeout = %q, want %q", got, txs(2, 3))
		}
		time.Sleep(6 * time.Second) // 11 s after the first pull, 6 s after the second
		if got := m.Pull(10, 1<<20); !slices.EqualFunc(got, [][]byte{tx(0), tx(1), tx(3)}, slices.Equal) {
			t.Fatalf("Pull after the timeout = %q, want the expired txs in pull order", got)
		}
	})
}
