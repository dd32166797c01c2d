package store_test

import (
	"errors"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/chain/store"
)

// saveNodes saves each node's block and QC, one SaveTree each.
func saveNodes(t testing.TB, st *store.Store, nodes ...*chaintest.Node) {
	t.Helper()
	for _, n := range nodes {
		if err := st.SaveTree([]*chain.Block{n.Block}, []chain.QuorumCert{n.QC}); err != nil {
			t.Fatal(err)
		}
	}
}

func ids(blocks []*chain.Block) []chain.Hash {
	out := make([]chain.Hash, len(blocks))
	for i, b := range blocks {
		out[i] = b.ID
	}
	return out
}

func sameIDs(got, want []chain.Hash) bool {
	if len(got) != len(want) {
		return false
	}
	set := map[chain.Hash]bool{}
	for _, id := range got {
		set[id] = true
	}
	for _, id := range want {
		if !set[id] {
			return false
		}
	}
	return true
}

func TestRecoverAfterCommit(t *testing.T) {
	f := newFixture(5, 3)
	st := openStore(t, tempPath(t), f.v.Genesis)
	defer st.Close()
	nodes := f.b.Extend(f.b.Genesis(), 6)
	fork := f.b.Child(nodes[1], 30) // off an ancestor of the root: stale
	saveNodes(t, st, nodes...)
	saveNodes(t, st, fork)
	// nodes[5].QC commits nodes[3].
	m := newLedgerSim()
	m.commit(t, st, txsOf(nodes[:4]), nodes[5].QC.LedgerInfo())
	rd, err := st.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if rd.Root.Block.ID != nodes[3].Block.ID || rd.Root.QC.CertifiedBlock() != nodes[3].Info ||
		rd.Root.LedgerInfo.CertifiedBlock().ID != nodes[5].Block.ID {
		t.Fatalf("root = %v certified by %v committed by %s", rd.Root.Block, rd.Root.QC.CertifiedBlock(), rd.Root.LedgerInfo.CertifiedBlock().ID.Short())
	}
	if got := ids(rd.Blocks); len(got) != 2 || got[0] != nodes[4].Block.ID || got[1] != nodes[5].Block.ID {
		t.Fatalf("Blocks = %v", rd.Blocks)
	}
	if len(rd.QCs) != 2 || rd.QCs[1].CertifiedBlock() != nodes[5].Info {
		t.Fatalf("QCs = %d", len(rd.QCs))
	}
	wantStale := []chain.Hash{f.v.Genesis.Block().ID, nodes[0].Block.ID, nodes[1].Block.ID, nodes[2].Block.ID, fork.Block.ID}
	if !sameIDs(rd.Stale, wantStale) || rd.SyncTarget != nil {
		t.Fatalf("Stale = %d blocks, SyncTarget = %v", len(rd.Stale), rd.SyncTarget)
	}
	if err := st.PruneTree(rd.Stale); err != nil {
		t.Fatal(err)
	}
	rd2, err := st.Recover()
	if err != nil || len(rd2.Stale) != 0 || len(rd2.Blocks) != 2 || rd2.Root.Block.ID != nodes[3].Block.ID {
		t.Fatalf("after pruning the stale blocks: %v, %+v", err, rd2)
	}
}

func TestRecoverSyncTarget(t *testing.T) {
	f := newFixture(6, 2)
	st := openStore(t, tempPath(t), f.v.Genesis)
	defer st.Close()
	nodes := f.b.Extend(f.b.Genesis(), 12)
	saveNodes(t, st, nodes[:2]...)
	b0, b1, b2 := nodes[9], nodes[10], nodes[11]
	err := st.SaveTree([]*chain.Block{b0.Block, b1.Block, b2.Block}, []chain.QuorumCert{b0.QC, b1.QC, b2.QC})
	if err != nil {
		t.Fatal(err)
	}
	check := func(wantTarget bool) {
		t.Helper()
		rd, err := st.Recover()
		if err != nil {
			t.Fatal(err)
		}
		if !wantTarget {
			if rd.SyncTarget != nil {
				t.Fatal("unexpected SyncTarget")
			}
			return
		}
		tg := rd.SyncTarget
		if tg == nil {
			t.Fatal("no SyncTarget")
		}
		for i, n := range []*chaintest.Node{b0, b1, b2} {
			if tg.Blocks[i].ID != n.Block.ID || tg.QCs[i].CertifiedBlock() != n.Info {
				t.Fatalf("SyncTarget element %d is %v", i, tg.Blocks[i])
			}
		}
		if len(rd.Blocks) != 2 || len(rd.Stale) != 0 {
			t.Fatalf("Blocks %d, Stale %d", len(rd.Blocks), len(rd.Stale))
		}
	}
	check(true)
	// Mid-sync: part of the transactions applied, no ledger info yet.
	m := newLedgerSim()
	all := txsOf(nodes[:10])
	m.commit(t, st, all[:5], nil)
	check(true)
	m.commit(t, st, all[5:], nil)
	check(true)
	m.commit(t, st, nil, b2.QC.LedgerInfo())
	check(false)
	rd, err := st.Recover()
	if err != nil || rd.Root.Block.ID != b0.Block.ID || len(rd.Blocks) != 2 || len(rd.Stale) != 3 {
		t.Fatalf("after the sync: %v, %+v", err, rd)
	}
}

// committedMirror has the layout of the stored ledger summary.
type committedMirror struct {
	_          struct{} `cbor:",toarray"`
	Version    uint64
	Frontier   []chain.Hash
	LedgerInfo *chain.LedgerInfoWithSignatures
}

func TestRecoverCorrupt(t *testing.T) {
	f := newFixture(7, 2)
	nodes := f.b.Extend(f.b.Genesis(), 5)
	gid := f.v.Genesis.Block().ID
	// Each case starts from a store holding nodes[0..4] whose ledger
	// committed nodes[0..2] (by nodes[4].QC).
	tests := []struct {
		name   string
		mutate func(t *testing.T, path string, st **store.Store)
	}{
		{"root block missing", func(t *testing.T, path string, st **store.Store) {
			(*st).Close()
			// What PruneTree would do, had it not refused to prune the root.
			patch(t, path, "blocks", map[string][]byte{string(nodes[2].Block.ID[:]): nil})
			patch(t, path, "qcs", map[string][]byte{string(nodes[2].Block.ID[:]): nil})
			patch(t, path, "commits", map[string][]byte{string(nodes[0].Block.ID[:]): nil})
		}},
		{"root QC missing", func(t *testing.T, path string, st **store.Store) {
			(*st).Close()
			patch(t, path, "qcs", map[string][]byte{string(nodes[2].Block.ID[:]): nil})
		}},
		{"commit cert missing", func(t *testing.T, path string, st **store.Store) {
			(*st).Close()
			patch(t, path, "commits", map[string][]byte{string(nodes[2].Block.ID[:]): nil})
		}},
		{"commit index points to the wrong QC", func(t *testing.T, path string, st **store.Store) {
			(*st).Close()
			patch(t, path, "commits", map[string][]byte{string(nodes[2].Block.ID[:]): mustEncode(t, nodes[3].Block.ID)})
		}},
		{"undecodable block", func(t *testing.T, path string, st **store.Store) {
			(*st).Close()
			patch(t, path, "blocks", map[string][]byte{string(nodes[3].Block.ID[:]): {0x83, 0x01}})
		}},
		{"block under the wrong key", func(t *testing.T, path string, st **store.Store) {
			(*st).Close()
			patch(t, path, "blocks", map[string][]byte{string(gid[:]): mustEncode(t, nodes[1].Block)})
		}},
		{"QC of a missing block", func(t *testing.T, path string, st **store.Store) {
			(*st).Close()
			patch(t, path, "blocks", map[string][]byte{string(nodes[4].Block.ID[:]): nil})
		}},
		{"undecodable ledger", func(t *testing.T, path string, st **store.Store) {
			(*st).Close()
			patch(t, path, "ledger", map[string][]byte{"committed": {0x9f}})
		}},
		{"frontier size", func(t *testing.T, path string, st **store.Store) {
			c, err := (*st).Committed()
			if err != nil {
				t.Fatal(err)
			}
			(*st).Close()
			bad := committedMirror{Version: c.Version, Frontier: append(c.Frontier, chain.Hash{}), LedgerInfo: c.LedgerInfo}
			patch(t, path, "ledger", map[string][]byte{"committed": mustEncode(t, &bad)})
		}},
		{"frontier root", func(t *testing.T, path string, st **store.Store) {
			c, err := (*st).Committed()
			if err != nil {
				t.Fatal(err)
			}
			(*st).Close()
			c.Frontier[0][0] ^= 1
			bad := committedMirror{Version: c.Version, Frontier: c.Frontier, LedgerInfo: c.LedgerInfo}
			patch(t, path, "ledger", map[string][]byte{"committed": mustEncode(t, &bad)})
		}},
		{"ledger commit info differs from the QC", func(t *testing.T, path string, st **store.Store) {
			c, err := (*st).Committed()
			if err != nil {
				t.Fatal(err)
			}
			(*st).Close()
			li := *c.LedgerInfo
			li.LedgerInfo.CommitInfo.TimestampUsecs++
			bad := committedMirror{Version: c.Version, Frontier: c.Frontier, LedgerInfo: &li}
			patch(t, path, "ledger", map[string][]byte{"committed": mustEncode(t, &bad)})
		}},
		{"mid-sync without a target", func(t *testing.T, path string, st **store.Store) {
			m := newLedgerSim()
			m.apply(m.batch(txsOf(nodes[:3]), nil)) // what the store holds
			m.commit(t, *st, f.b.Txs(3), nil)
			(*st).Close()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := tempPath(t)
			st := openStore(t, path, f.v.Genesis)
			saveNodes(t, st, nodes...)
			m := newLedgerSim()
			m.commit(t, st, txsOf(nodes[:3]), nodes[4].QC.LedgerInfo())
			if _, err := st.Recover(); err != nil {
				t.Fatalf("Recover before the damage: %v", err)
			}
			tc.mutate(t, path, &st)
			st, err := store.Open(path, f.v.Genesis)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer st.Close()
			_, err = st.Recover()
			if !errors.Is(err, store.ErrCorrupt) {
				t.Fatalf("Recover: %v, want ErrCorrupt", err)
			}
			t.Log(err)
		})
	}
}
