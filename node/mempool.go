package node

import (
	"container/list"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/p2pnode/p2pnode/chain"
)

// Mempool errors.
var (
	// ErrMempoolFull: the pool is at its count or byte limit.
	ErrMempoolFull = errors.New("node: mempool full")
	// ErrDuplicateTx: the transaction is pending or was committed recently.
	ErrDuplicateTx = errors.New("node: duplicate transaction")
	// ErrTxSize: the transaction is empty or over chain.MaxTxSize.
	ErrTxSize = errors.New("node: transaction size out of range")
)

// MempoolConfig bounds a Mempool.
type MempoolConfig struct {
	// MaxTxs and MaxBytes cap the pending transactions.
	MaxTxs   int
	MaxBytes int
	// Recent is how many hashes of committed transactions the pool
	// remembers, so that a late gossip copy is not proposed again.
	Recent int
	// InFlightTimeout is how long a transaction pulled for a proposal (or
	// seen in one) waits for its commit before it becomes pullable again.
	InFlightTimeout time.Duration
}

// DefaultMempoolConfig returns a pool of up to 100,000 transactions and
// 256 MiB.
func DefaultMempoolConfig() MempoolConfig {
	return MempoolConfig{MaxTxs: 100_000, MaxBytes: 256 << 20, Recent: 200_000, InFlightTimeout: 30 * time.Second}
}

// Validate checks c.
func (c MempoolConfig) Validate() error {
	if c.MaxTxs < 1 || c.MaxBytes < chain.MaxTxSize || c.Recent < 0 || c.InFlightTimeout <= 0 {
		return fmt.Errorf("%w: mempool %+v: want MaxTxs ≥ 1, MaxBytes ≥ %d, Recent ≥ 0, InFlightTimeout > 0", ErrInvalidConfig, c, chain.MaxTxSize)
	}
	return nil
}

// Mempool holds the transactions waiting for a block: bounded in count and
// bytes, de-duplicated by transaction hash (chain.TxLeafHash), pulled in
// arrival order. A pulled transaction stays in the pool, in flight, until a
// commit removes it or InFlightTimeout passes and it is pulled again. It is
// safe for concurrent use.
type Mempool struct {
	cfg MempoolConfig

	mu     sync.Mutex
	ready  *list.List // of *poolTx, arrival order
	flight *list.List // of *poolTx, pull order
	byHash map[chain.Hash]*list.Element
	bytes  int
	recent recentSet
}

type poolTx struct {
	hash     chain.Hash
	tx       []byte
	inFlight bool
	pulledAt time.Time
}

// NewMempool returns an empty pool. It panics if cfg is not valid.
func NewMempool(cfg MempoolConfig) *Mempool {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return &Mempool{
		cfg:    cfg,
		ready:  list.New(),
		flight: list.New(),
		byHash: make(map[chain.Hash]*list.Element),
		recent: newRecentSet(cfg.Recent),
	}
}

// Add adds tx, which the pool keeps (the caller must not change it).
func (m *Mempool) Add(tx []byte) error {
	if len(tx) == 0 || len(tx) > chain.MaxTxSize {
		return fmt.Errorf("%w: %d bytes, want 1 to %d", ErrTxSize, len(tx), chain.MaxTxSize)
	}
	h := chain.TxLeafHash(tx)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.byHash[h]; ok || m.recent.has(h) {
		return ErrDuplicateTx
	}
	if len(m.byHash) >= m.cfg.MaxTxs || m.bytes+len(tx) > m.cfg.MaxBytes {
		return ErrMempoolFull
	}
	m.byHash[h] = m.ready.PushBack(&poolTx{hash: h, tx: tx})
	m.bytes += len(tx)
	return nil
}

// Pull returns up to maxTxs transactions of at most maxBytes in all, oldest
// first, and marks them in flight. It implements the consensus engine's
// mempool.
func (m *Mempool) Pull(maxTxs, maxBytes int) [][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	m.requeueLocked(now)
	var out [][]byte
	size := 0
	for e := m.ready.Front(); e != nil && len(out) < maxTxs; {
		t := e.Value.(*poolTx)
		if size+len(t.tx) > maxBytes {
			break
		}
		next := e.Next()
		m.ready.Remove(e)
		t.inFlight, t.pulledAt = true, now
		m.byHash[t.hash] = m.flight.PushBack(t)
		out = append(out, t.tx)
		size += len(t.tx)
		e = next
	}
	return out
}

// MarkInFlight marks the pending transactions among txs in flight, as if
// pulled: another validator proposed them.
func (m *Mempool) MarkInFlight(txs [][]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	for _, tx := range txs {
		e, ok := m.byHash[chain.TxLeafHash(tx)]
		if !ok {
			continue
		}
		t := e.Value.(*poolTx)
		if t.inFlight {
			t.pulledAt = now
			m.flight.MoveToBack(e)
			continue
		}
		m.ready.Remove(e)
		t.inFlight, t.pulledAt = true, now
		m.byHash[t.hash] = m.flight.PushBack(t)
	}
}

// requeueLocked puts transactions in flight for longer than
// InFlightTimeout back at the front of the ready queue, oldest first.
func (m *Mempool) requeueLocked(now time.Time) {
	var back []*poolTx
	for e := m.flight.Front(); e != nil; {
		t := e.Value.(*poolTx)
		if now.Sub(t.pulledAt) < m.cfg.InFlightTimeout {
			break
		}
		next := e.Next()
		m.flight.Remove(e)
		back = append(back, t)
		e = next
	}
	for i := len(back) - 1; i >= 0; i-- {
		t := back[i]
		t.inFlight = false
		m.byHash[t.hash] = m.ready.PushFront(t)
	}
}

// Remove drops committed transactions and remembers their hashes.
func (m *Mempool) Remove(txs [][]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, tx := range txs {
		h := chain.TxLeafHash(tx)
		m.recent.add(h)
		e, ok := m.byHash[h]
		if !ok {
			continue
		}
		t := e.Value.(*poolTx)
		if t.inFlight {
			m.flight.Remove(e)
		} else {
			m.ready.Remove(e)
		}
		delete(m.byHash, h)
		m.bytes -= len(t.tx)
	}
}

// Len returns the number of pending transactions, in flight included.
func (m *Mempool) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.byHash)
}

// Bytes returns the size of the pending transactions.
func (m *Mempool) Bytes() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bytes
}

// recentSet remembers the last limit hashes added.
type recentSet struct {
	limit int
	ring  []chain.Hash
	next  int
	set   map[chain.Hash]struct{}
}

func newRecentSet(limit int) recentSet {
	return recentSet{limit: limit, set: make(map[chain.Hash]struct{})}
}

func (r *recentSet) has(h chain.Hash) bool { _, ok := r.set[h]; return ok }

func (r *recentSet) add(h chain.Hash) {
	if r.limit == 0 || r.has(h) {
		return
	}
	if len(r.ring) < r.limit {
		r.ring = append(r.ring, h)
	} else {
		delete(r.set, r.ring[r.next])
		r.ring[r.next] = h
		r.next = (r.next + 1) % len(r.ring)
	}
	r.set[h] = struct{}{}
}
