package store_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/chain/store"
)

var errCrash = errors.New("crashed")

// crashStore performs the first `left` writes on st and "crashes" at the
// next one: that write and every later one are not performed. left < 0
// never crashes. Reads go to the store directly; it is a ledger.Storage.
type crashStore struct {
	*store.Store
	left int
}

func (c *crashStore) write(fn func() error) error {
	if c.left == 0 {
		return errCrash
	}
	if c.left > 0 {
		c.left--
	}
	return fn()
}

func (c *crashStore) SaveTree(blocks []*chain.Block, qcs []chain.QuorumCert) error {
	return c.write(func() error { return c.Store.SaveTree(blocks, qcs) })
}

func (c *crashStore) PruneTree(ids []chain.Hash) error {
	return c.write(func() error { return c.Store.PruneTree(ids) })
}

func (c *crashStore) SaveSafetyData(sd store.SafetyData) error {
	return c.write(func() error { return c.Store.SaveSafetyData(sd) })
}

func (c *crashStore) Commit(b *ledger.Batch) error {
	return c.write(func() error { return c.Store.Commit(b) })
}

// expect is what the store must recover after some writes of the lifecycle.
type expect struct {
	ledger *ledgerSim
	root   chain.Hash
	saved  map[chain.Hash]bool // stored blocks: saved and not pruned
	safety store.SafetyData
	window bool // inside the fast-forward: 3-chain saved, ledger not there
}

// lifecycle is a scripted node life on a prebuilt chain: normal rounds
// (vote, save block, save QC, commit, prune), a fast-forward (save the
// 3-chain, state-sync in chunks, prune), then normal rounds again.
type lifecycle struct {
	genesis *chaintest.Node
	nodes   []*chaintest.Node // nodes[i] has round i+1
	ffFrom  int               // the fast-forward 3-chain is nodes[ffFrom : ffFrom+3]
	chunk   int               // transactions per state-sync chunk
}

func newLifecycle() *lifecycle {
	f := newFixture(11, 3)
	return &lifecycle{genesis: f.b.Genesis(), nodes: f.b.Extend(f.b.Genesis(), 15), ffFrom: 10, chunk: 5}
}

// run performs the lifecycle on w, calling rec after every write performed,
// and returns the first error (errCrash at the crash point).
func (lc *lifecycle) run(w *crashStore, rec func(expect)) error {
	m := newLedgerSim()
	root := lc.genesis.Block.ID
	saved := map[chain.Hash]bool{root: true}
	var safety store.SafetyData
	window := false
	record := func() {
		s := make(map[chain.Hash]bool, len(saved))
		for id := range saved {
			s[id] = true
		}
		rec(expect{ledger: m.clone(), root: root, saved: s, safety: safety, window: window})
	}
	record()
	commit := func(b *ledger.Batch) error {
		if err := w.Commit(b); err != nil {
			return err
		}
		m.apply(b)
		if b.LedgerInfo != nil {
			root = b.LedgerInfo.LedgerInfo.CommitInfo.ID
			window = false
		}
		record()
		return nil
	}
	prune := func(ids ...chain.Hash) error {
		if err := w.PruneTree(ids); err != nil {
			return err
		}
		for _, id := range ids {
			delete(saved, id)
		}
		record()
		return nil
	}
	round := func(i int, split bool) error {
		n := lc.nodes[i]
		vd := chain.VoteDataFor(n.Block, n.Info)
		safety = store.SafetyData{Epoch: n.Block.Epoch(), LastVotedRound: n.Round(), PreferredRound: n.Block.QC().Round(),
			LastVote: &chain.Vote{VoteData: vd, LedgerInfo: n.QC.SignedLedgerInfo.LedgerInfo, Author: n.Block.Author(), Signature: []byte{byte(i)}}}
		if err := w.SaveSafetyData(safety); err != nil {
			return err
		}
		record()
		if split {
			if err := w.SaveTree([]*chain.Block{n.Block}, nil); err != nil {
				return err
			}
			saved[n.Block.ID] = true
			record()
			if err := w.SaveTree(nil, []chain.QuorumCert{n.QC}); err != nil {
				return err
			}
		} else if err := w.SaveTree([]*chain.Block{n.Block}, []chain.QuorumCert{n.QC}); err != nil {
			return err
		}
		saved[n.Block.ID] = true
		record()
		if !n.QC.CommitsBlock() || n.QC.CommitInfo().Round == 0 {
			return nil // commits nothing, or genesis again
		}
		c := lc.nodes[i-2]
		old := root
		if err := commit(m.batch(c.Block.Payload(), n.QC.LedgerInfo())); err != nil {
			return err
		}
		return prune(old)
	}

	for i := range 6 {
		if err := round(i, true); err != nil {
			return err
		}
	}

	// Fast-forward to the 3-chain nodes[ffFrom..ffFrom+2].
	b := lc.nodes[lc.ffFrom : lc.ffFrom+3]
	if err := w.SaveTree(chaintest.Blocks(b), []chain.QuorumCert{b[0].QC, b[1].QC, b[2].QC}); err != nil {
		return err
	}
	for _, n := range b {
		saved[n.Block.ID] = true
	}
	window = true
	record()
	txs := txsOf(lc.nodes[:lc.ffFrom+1])[len(m.txs):]
	for len(txs) > 0 {
		n := min(lc.chunk, len(txs))
		var li *chain.LedgerInfoWithSignatures
		if n == len(txs) {
			li = b[2].QC.LedgerInfo()
		}
		if err := commit(m.batch(txs[:n], li)); err != nil {
			return err
		}
		txs = txs[n:]
	}
	var stale []chain.Hash
	for id := range saved {
		if id != b[0].Block.ID && id != b[1].Block.ID && id != b[2].Block.ID {
			stale = append(stale, id)
		}
	}
	if err := prune(stale...); err != nil {
		return err
	}

	for i := lc.ffFrom + 3; i < len(lc.nodes); i++ {
		if err := round(i, false); err != nil {
			return err
		}
	}
	return nil
}

func TestCrashAtEveryWrite(t *testing.T) {
	lc := newLifecycle()
	f := newFixture(11, 3)
	g := f.v.Genesis

	var exps []expect
	st := openStore(t, tempPath(t), g)
	if err := lc.run(&crashStore{Store: st, left: -1}, func(e expect) { exps = append(exps, e) }); err != nil {
		t.Fatalf("lifecycle without a crash: %v", err)
	}
	st.Close()
	writes := len(exps) - 1
	windows := 0
	for _, e := range exps {
		if e.window {
			windows++
		}
	}
	if writes < 40 || windows < 4 {
		t.Fatalf("lifecycle has %d writes, %d in the fast-forward window", writes, windows)
	}
	t.Logf("%d writes, %d crash points inside the fast-forward", writes, windows)

	for k := 0; k <= writes; k++ {
		path := tempPath(t)
		st := openStore(t, path, g)
		err := lc.run(&crashStore{Store: st, left: k}, func(expect) {})
		if k < writes && !errors.Is(err, errCrash) || k == writes && err != nil {
			t.Fatalf("crash at %d: lifecycle returned %v", k, err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		st = openStore(t, path, g)
		checkRecovered(t, k, st, lc, exps[k])
		st.Close()
	}
}

// checkRecovered checks what st recovers against e, then finishes an
// interrupted fast-forward and prunes the stale blocks, as a node would.
func checkRecovered(t *testing.T, k int, st *store.Store, lc *lifecycle, e expect) {
	t.Helper()
	rd, err := st.Recover()
	if err != nil {
		t.Fatalf("crash at %d: Recover: %v", k, err)
	}
	if rd.Root.Block.ID != e.root || rd.Root.QC.CertifiedBlock().ID != e.root || rd.Root.LedgerInfo.CommitInfo().ID != e.root {
		t.Fatalf("crash at %d: root %s, want %s", k, rd.Root.Block.ID.Short(), e.root.Short())
	}
	if (rd.SyncTarget != nil) != e.window {
		t.Fatalf("crash at %d: SyncTarget %v, want one: %v", k, rd.SyncTarget != nil, e.window)
	}
	known := map[chain.Hash]bool{e.root: true}
	for _, b := range rd.Blocks {
		if !known[b.ParentID()] {
			t.Fatalf("crash at %d: block %v does not descend from the root through earlier blocks", k, b)
		}
		known[b.ID] = true
	}
	for _, qc := range rd.QCs {
		if !known[qc.CertifiedBlock().ID] || qc.CertifiedBlock().ID == e.root {
			t.Fatalf("crash at %d: QC of round %d certifies no recovered descendant of the root", k, qc.Round())
		}
	}
	all := append(append([]chain.Hash{e.root}, ids(rd.Blocks)...), rd.Stale...)
	if tg := rd.SyncTarget; tg != nil {
		ff := lc.nodes[lc.ffFrom : lc.ffFrom+3]
		for i := range 3 {
			if tg.Blocks[i].ID != ff[i].Block.ID || tg.QCs[i].CertifiedBlock() != ff[i].Info {
				t.Fatalf("crash at %d: SyncTarget element %d is %v", k, i, tg.Blocks[i])
			}
		}
		all = append(all, ids(tg.Blocks[:])...)
	}
	if !sameIDs(all, mapKeys(e.saved)) || len(all) != len(e.saved) {
		t.Fatalf("crash at %d: recovered %d blocks (root, tree, target, stale), %d stored", k, len(all), len(e.saved))
	}
	if !bytes.Equal(mustEncode(t, &rd.Safety), mustEncode(t, &e.safety)) {
		t.Fatalf("crash at %d: safety data %+v, want %+v", k, rd.Safety, e.safety)
	}
	checkLedger(t, st, e.ledger)

	// Resume: finish the state sync from the ledger's version, prune.
	m := e.ledger.clone()
	if tg := rd.SyncTarget; tg != nil {
		rest := txsOf(lc.nodes[:lc.ffFrom+1])[len(m.txs):]
		m.commit(t, st, rest, tg.QCs[2].LedgerInfo())
		rd, err = st.Recover()
		if err != nil || rd.Root.Block.ID != tg.Blocks[0].ID || rd.SyncTarget != nil {
			t.Fatalf("crash at %d: after resuming the sync: %v", k, err)
		}
	}
	if err := st.PruneTree(rd.Stale); err != nil {
		t.Fatal(err)
	}
	rd2, err := st.Recover()
	if err != nil || len(rd2.Stale) != 0 || rd2.Root.Block.ID != rd.Root.Block.ID || len(rd2.Blocks) != len(rd.Blocks) {
		t.Fatalf("crash at %d: after pruning: %v", k, err)
	}
	checkLedger(t, st, m)
}

func mapKeys(m map[chain.Hash]bool) []chain.Hash {
	out := make([]chain.Hash, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	return out
}
