package store_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/chain/store"
)

// commitThroughLedger executes and commits nodes (consecutive rounds from
// genesis) with a ledger on st, saving each block and its QC first, as
// consensus does.
func commitThroughLedger(t *testing.T, st *store.Store, g *chain.Genesis, nodes []*chaintest.Node) *ledger.Ledger {
	t.Helper()
	l, err := ledger.New(st, g)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		saveNodes(t, st, n)
		info, err := l.Execute(n.Block)
		if err != nil {
			t.Fatalf("Execute %v: %v", n.Block, err)
		}
		if info != n.Info {
			t.Fatalf("Execute %v = %+v, want %+v", n.Block, info, n.Info)
		}
		if i >= 2 {
			if err := l.Commit([]*chain.Block{nodes[i-2].Block}, n.QC.LedgerInfo()); err != nil {
				t.Fatalf("Commit %v: %v", nodes[i-2].Block, err)
			}
		}
	}
	return l
}

func TestThroughLedger(t *testing.T) {
	f := newFixture(21, 4)
	g := f.v.Genesis
	nodes := f.b.Extend(f.b.Genesis(), 12)
	path := tempPath(t)
	st := openStore(t, path, g)
	commitThroughLedger(t, st, g, nodes)
	st.Close()

	st = openStore(t, path, g)
	defer st.Close()
	rd, err := st.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if rd.Root.Block.ID != nodes[9].Block.ID || len(rd.Blocks) != 2 || rd.SyncTarget != nil {
		t.Fatalf("Recover: root %v, %d blocks", rd.Root.Block, len(rd.Blocks))
	}
	l, err := ledger.New(st, g)
	if err != nil {
		t.Fatal(err)
	}
	if l.Committed() != nodes[9].Info || l.Root() != nodes[9].Info.ExecutedStateID {
		t.Fatalf("reopened ledger at %+v", l.Committed())
	}
	m := newLedgerSim()
	m.apply(m.batch(txsOf(nodes[:10]), nodes[11].QC.LedgerInfo()))
	checkLedger(t, st, m)
}

// TestStateSyncCrash state-syncs a store through the ledger from a peer's
// ledger, crashing at every write, and resumes after each crash from what
// Recover says.
func TestStateSyncCrash(t *testing.T) {
	f := newFixture(22, 5)
	g := f.v.Genesis
	nodes := f.b.Extend(f.b.Genesis(), 12)
	peerStore := openStore(t, tempPath(t), g)
	defer peerStore.Close()
	peer := commitThroughLedger(t, peerStore, g, nodes)
	b := nodes[9:12] // the peer committed nodes[9] with nodes[11].QC
	target := b[2].QC.LedgerInfo()
	tv := target.LedgerInfo.CommitInfo.Version

	// sync runs the fast-forward on w: save the 3-chain, apply chunks.
	sync := func(w *crashStore) error {
		if err := w.SaveTree(chaintest.Blocks(b), []chain.QuorumCert{b[0].QC, b[1].QC, b[2].QC}); err != nil {
			return err
		}
		l, err := ledger.New(w, g)
		if err != nil {
			return err
		}
		for l.Version() < tv {
			c, err := peer.GetChunk(l.Version(), tv, 7)
			if err != nil {
				return err
			}
			if err := l.ApplyChunk(c, target); err != nil {
				return err
			}
		}
		return nil
	}
	for k := 0; ; k++ {
		path := tempPath(t)
		st := openStore(t, path, g)
		err := sync(&crashStore{Store: st, left: k})
		st.Close()
		if err != nil && !errors.Is(err, errCrash) {
			t.Fatalf("crash at %d: %v", k, err)
		}
		st = openStore(t, path, g)
		rd, rerr := st.Recover()
		if rerr != nil {
			t.Fatalf("crash at %d: Recover: %v", k, rerr)
		}
		done := err == nil
		if (rd.SyncTarget == nil) != (k == 0 || done) {
			t.Fatalf("crash at %d: SyncTarget %v", k, rd.SyncTarget != nil)
		}
		if tg := rd.SyncTarget; tg != nil {
			// Resume toward the recovered target with a fresh ledger.
			l, err := ledger.New(st, g)
			if err != nil {
				t.Fatal(err)
			}
			for l.Version() < tg.QCs[2].CommitInfo().Version {
				c, err := peer.GetChunk(l.Version(), tv, 7)
				if err != nil {
					t.Fatal(err)
				}
				if err := l.ApplyChunk(c, tg.QCs[2].LedgerInfo()); err != nil {
					t.Fatalf("crash at %d: resume: %v", k, err)
				}
			}
			if rd, err = st.Recover(); err != nil || rd.SyncTarget != nil {
				t.Fatalf("crash at %d: after resuming: %v", k, err)
			}
		}
		if k > 0 && rd.Root.Block.ID != b[0].Block.ID {
			t.Fatalf("crash at %d: root %v after the sync", k, rd.Root.Block)
		}
		if k > 0 {
			m := newLedgerSim()
			m.apply(m.batch(txsOf(nodes[:10]), target))
			checkLedger(t, st, m)
		}
		st.Close()
		if done {
			if k < 4 {
				t.Fatalf("the sync took only %d writes", k)
			}
			return
		}
	}
}

// TestConcurrentReaders reads while batches commit: every reader sees a
// whole batch or none of it.
func TestConcurrentReaders(t *testing.T) {
	f := newFixture(23, 10)
	st := openStore(t, tempPath(t), f.v.Genesis)
	defer st.Close()
	m := newLedgerSim()
	batches := make([]*ledger.Batch, 30)
	for i := range batches {
		batches[i] = m.batch(f.b.Txs(10), nil)
		m.apply(batches[i])
	}
	done := make(chan struct{})
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			for {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				c, err := st.Committed()
				if err == nil && c.Version%10 != 0 {
					err = fmt.Errorf("version %d is inside a batch", c.Version)
				}
				if err == nil {
					_, err = st.Txs(0, c.Version)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for _, b := range batches {
		if err := st.Commit(b); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	checkLedger(t, st, m)
}
