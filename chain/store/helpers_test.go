package store_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/transparency-dev/merkle/compact"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/chain/statetree"
	"github.com/p2pnode/p2pnode/chain/store"
)

// ledgerSim builds the batches a ledger would commit, by hand, so the tests
// do not depend on the ledger package. It is a reference model of the
// durable ledger: every transaction, the last value of each key and every
// accumulator node.
type ledgerSim struct {
	acc   *chain.Accumulator
	txs   [][]byte
	state map[string][]byte
	nodes map[compact.NodeID]chain.Hash
	li    *chain.LedgerInfoWithSignatures
	tree  *statetree.MemStore // the state tree of every version; clones share it
}

func newLedgerSim() *ledgerSim {
	return &ledgerSim{acc: chain.NewAccumulator(), state: map[string][]byte{}, nodes: map[compact.NodeID]chain.Hash{}, tree: statetree.NewMemStore()}
}

// batch returns the batch appending txs (and committing li if not nil) to
// the model, without changing the model.
func (m *ledgerSim) batch(txs [][]byte, li *chain.LedgerInfoWithSignatures) *ledger.Batch {
	acc := m.acc.Clone()
	b := &ledger.Batch{StartVersion: acc.Size(), Txs: txs, LedgerInfo: li}
	idx := map[string]int{}
	for i, tx := range txs {
		acc.AppendLeaf(chain.TxLeafHash(tx), func(id compact.NodeID, h chain.Hash) {
			b.Nodes = append(b.Nodes, ledger.Node{ID: id, Hash: h})
		})
		if k, v, err := chain.DecodeKV(tx); err == nil {
			w := ledger.KV{Key: k, Value: v, Version: b.StartVersion + uint64(i)}
			if j, ok := idx[string(k)]; ok {
				b.Writes[j] = w
			} else {
				idx[string(k)] = len(b.Writes)
				b.Writes = append(b.Writes, w)
			}
		}
	}
	slices.SortFunc(b.Writes, func(x, y ledger.KV) int { return bytes.Compare(x.Key, y.Key) })
	b.Frontier = acc.Frontier()
	return store.WithTree(panicTB{}, m.tree, b)
}

// panicTB is the testing.TB of helpers that have none: a failure panics.
type panicTB struct{ testing.TB }

func (panicTB) Helper()                           {}
func (panicTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// apply records b in the model; call it once the store committed b.
func (m *ledgerSim) apply(b *ledger.Batch) {
	for _, tx := range b.Txs {
		m.acc.Append(tx)
	}
	m.txs = append(m.txs, b.Txs...)
	for _, tb := range b.Tree {
		m.tree.Apply(tb)
	}
	for _, n := range b.Nodes {
		m.nodes[n.ID] = n.Hash
	}
	for _, w := range b.Writes {
		m.state[string(w.Key)] = w.Value
	}
	if b.LedgerInfo != nil {
		m.li = b.LedgerInfo
	}
}

// commit commits txs (and li) to st and records them in the model.
func (m *ledgerSim) commit(t testing.TB, st ledger.Storage, txs [][]byte, li *chain.LedgerInfoWithSignatures) {
	t.Helper()
	b := m.batch(txs, li)
	if err := st.Commit(b); err != nil {
		t.Fatalf("Commit(start %d, %d txs): %v", b.StartVersion, len(b.Txs), err)
	}
	m.apply(b)
}

// clone returns an independent copy of m.
func (m *ledgerSim) clone() *ledgerSim {
	c := &ledgerSim{acc: m.acc.Clone(), txs: append([][]byte(nil), m.txs...), state: map[string][]byte{},
		nodes: map[compact.NodeID]chain.Hash{}, li: m.li, tree: m.tree}
	for k, v := range m.state {
		c.state[k] = v
	}
	for k, v := range m.nodes {
		c.nodes[k] = v
	}
	return c
}

// checkLedger checks that st holds exactly the ledger m models, from the
// first version it keeps (0 unless it pruned): its transactions, state,
// index by hash and the accumulator nodes a proof from there needs.
func checkLedger(t testing.TB, st *store.Store, m *ledgerSim) {
	t.Helper()
	w, err := st.Earliest()
	if err != nil {
		t.Fatalf("Earliest: %v", err)
	}
	c, err := st.Committed()
	if err != nil {
		t.Fatalf("Committed: %v", err)
	}
	if c.Version != uint64(len(m.txs)) {
		t.Fatalf("Committed().Version = %d, want %d", c.Version, len(m.txs))
	}
	acc, err := chain.AccumulatorFromFrontier(c.Version, c.Frontier)
	if err != nil {
		t.Fatalf("frontier: %v", err)
	}
	if acc.Root() != m.acc.Root() {
		t.Fatalf("frontier root %s, want %s", acc.Root().Short(), m.acc.Root().Short())
	}
	if (c.LedgerInfo == nil) != (m.li == nil) || c.LedgerInfo != nil && c.LedgerInfo.LedgerInfo != m.li.LedgerInfo {
		t.Fatalf("ledger info %v, want %v", c.LedgerInfo, m.li)
	}
	txs, err := st.Txs(w, c.Version-w)
	if err != nil {
		t.Fatalf("Txs(%d, %d): %v", w, c.Version-w, err)
	}
	for i := range txs {
		if string(txs[i]) != string(m.txs[w+uint64(i)]) {
			t.Fatalf("tx %d differs", w+uint64(i))
		}
	}
	for k, want := range m.state {
		got, ok, err := st.Get([]byte(k))
		if err != nil || !ok || string(got) != string(want) {
			t.Fatalf("Get(%x) = %x, %v, %v; want %x", k, got, ok, err, want)
		}
	}
	latest := make(map[chain.Hash]uint64, len(m.txs))
	for i, tx := range m.txs {
		latest[chain.TxLeafHash(tx)] = uint64(i)
	}
	for h, want := range latest {
		got, ok, err := st.TxVersion(h)
		if want < w { // pruned
			if err != nil || ok {
				t.Fatalf("TxVersion(%s) of pruned version %d = %d, %v, %v; want not found", h.Short(), want, got, ok, err)
			}
			continue
		}
		if err != nil || !ok || got != want {
			t.Fatalf("TxVersion(%s) = %d, %v, %v; want %d", h.Short(), got, ok, err, want)
		}
	}
	if c.TreeVersion > 0 && c.TreeVersion < c.Version {
		// The tree lags (a ledger's sync deferred it): it is whole at its
		// version.
		if _, err := st.Node(statetree.NodeKey{Version: c.TreeVersion}); err != nil {
			t.Fatalf("state tree root at %d: %v", c.TreeVersion, err)
		}
	}
	if c.Version > 0 && c.TreeVersion == c.Version {
		got, err := st.Node(statetree.NodeKey{Version: c.Version})
		want, _ := m.tree.Node(statetree.NodeKey{Version: c.Version})
		if err != nil || got.Hash() != want.Hash() {
			t.Fatalf("state tree root at %d = %v, %v; want %s", c.Version, got, err, want.Hash().Short())
		}
		// The whole tree is readable (a prune kept it), and holds the state.
		leaves, err := statetree.New(st).Leaves(c.Version, chain.Hash{}, len(m.state)+1)
		if err != nil || len(leaves) != len(m.state) {
			t.Fatalf("state tree at %d: %d leaves, %v; want %d", c.Version, len(leaves), err, len(m.state))
		}
		for _, l := range leaves {
			if want, ok := m.state[string(l.Key)]; !ok || !bytes.Equal(l.Value, want) {
				t.Fatalf("state tree leaf %x = %x, want %x", l.Key, l.Value, want)
			}
		}
	}
	if _, ok, err := st.TxVersion(chain.Hash{1}); ok || err != nil {
		t.Fatalf("TxVersion(unknown) = %v, %v", ok, err)
	}
	ids := make([]compact.NodeID, 0, len(m.nodes))
	frontier := compact.RangeNodes(0, w, nil)
	for id := range m.nodes {
		if (id.Index+1)<<id.Level <= w && !slices.Contains(frontier, id) {
			continue // pruned, and no proof from w needs it
		}
		ids = append(ids, id)
	}
	hs, err := st.Nodes(ids)
	if err != nil {
		t.Fatalf("Nodes: %v", err)
	}
	for i, id := range ids {
		if hs[i] != m.nodes[id] {
			t.Fatalf("node %v = %s, want %s", id, hs[i].Short(), m.nodes[id].Short())
		}
	}
}

// fixture is a chain of validators with a builder.
type fixture struct {
	v *chaintest.Validators
	b *chaintest.Builder
}

func newFixture(seed uint64, txsPerBlock int) fixture {
	v := chaintest.NewValidators(seed, 4)
	return fixture{v: v, b: chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: txsPerBlock, TxSize: 24, Seed: seed})}
}

func openStore(t testing.TB, path string, g *chain.Genesis) *store.Store {
	t.Helper()
	st, err := store.Open(path, g)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return st
}

func tempPath(t testing.TB) string { return filepath.Join(t.TempDir(), "node.db") }

func txsOf(nodes []*chaintest.Node) [][]byte {
	var out [][]byte
	for _, n := range nodes {
		out = append(out, n.Block.Payload()...)
	}
	return out
}
