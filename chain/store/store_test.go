package store_test

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/transparency-dev/merkle/compact"
	bolt "go.etcd.io/bbolt"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/chain/store"
)

// patch writes raw values into the closed store file at path.
func patch(t *testing.T, path string, bucket string, kv map[string][]byte) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		for k, v := range kv {
			var err error
			if v == nil {
				err = b.Delete([]byte(k))
			} else {
				err = b.Put([]byte(k), v)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func mustEncode(t *testing.T, v any) []byte {
	t.Helper()
	enc, err := chain.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

func TestOpenFreshAndReopen(t *testing.T) {
	f := newFixture(1, 2)
	path := tempPath(t)
	st := openStore(t, path, f.v.Genesis)
	rd, err := st.Recover()
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	g := f.v.Genesis
	gqc := g.QC()
	if rd.Root.Block.ID != g.Block().ID || rd.Root.QC.Hash() != gqc.Hash() || rd.Root.LedgerInfo.Hash() != gqc.Hash() {
		t.Fatalf("root of a fresh store is not genesis: %v", rd.Root.Block)
	}
	if len(rd.Blocks) != 0 || len(rd.QCs) != 0 || len(rd.Stale) != 0 || rd.SyncTarget != nil || rd.Safety != (store.SafetyData{}) {
		t.Fatalf("fresh store recovers %+v", rd)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recover(); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Recover after Close: %v, want ErrClosed", err)
	}
	if err := st.SaveSafetyData(store.SafetyData{Epoch: 1}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("SaveSafetyData after Close: %v, want ErrClosed", err)
	}
	st = openStore(t, path, g)
	defer st.Close()
	if rd, err := st.Recover(); err != nil || rd.Root.Block.ID != g.Block().ID {
		t.Fatalf("Recover after reopen: %v", err)
	}
}

func TestOpenRefuses(t *testing.T) {
	f := newFixture(1, 2)
	other := chaintest.NewValidators(2, 4).Genesis
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		genesis *chain.Genesis
		wantErr error
	}{
		{"wrong chain", func(*testing.T, string) {}, other, store.ErrWrongChain},
		{"wrong schema", func(t *testing.T, path string) {
			patch(t, path, "meta", map[string][]byte{"schema": mustEncode(t, uint64(7))})
		}, f.v.Genesis, store.ErrSchema},
		{"undecodable schema", func(t *testing.T, path string) {
			patch(t, path, "meta", map[string][]byte{"schema": {0xff}})
		}, f.v.Genesis, store.ErrCorrupt},
		{"missing bucket", func(t *testing.T, path string) {
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("txs")) }); err != nil {
				t.Fatal(err)
			}
		}, f.v.Genesis, store.ErrCorrupt},
		{"nil genesis", func(*testing.T, string) {}, nil, store.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := tempPath(t)
			openStore(t, path, f.v.Genesis).Close()
			tc.prepare(t, path)
			st, err := store.Open(path, tc.genesis)
			if !errors.Is(err, tc.wantErr) {
				if err == nil {
					st.Close()
				}
				t.Fatalf("Open: %v, want %v", err, tc.wantErr)
			}
			t.Log(err)
		})
	}
}

func TestOpenNotAStore(t *testing.T) {
	path := tempPath(t)
	if err := os.WriteFile(path, bytes.Repeat([]byte("not a bolt file "), 512), 0o600); err != nil {
		t.Fatal(err)
	}
	if st, err := store.Open(path, newFixture(1, 1).v.Genesis); err == nil {
		st.Close()
		t.Fatal("Open of a file that is not a store succeeded")
	}
}

func TestOpenTwice(t *testing.T) {
	f := newFixture(1, 2)
	path := tempPath(t)
	st := openStore(t, path, f.v.Genesis)
	defer st.Close()
	st2, err := store.Open(path, f.v.Genesis)
	if !errors.Is(err, store.ErrLocked) {
		if err == nil {
			st2.Close()
		}
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
}

func TestSafetyDataRoundTrip(t *testing.T) {
	f := newFixture(1, 2)
	st := openStore(t, tempPath(t), f.v.Genesis)
	defer st.Close()
	if sd, err := st.SafetyData(); err != nil || sd != (store.SafetyData{}) {
		t.Fatalf("SafetyData before any save = %+v, %v", sd, err)
	}
	n := f.b.Extend(f.b.Genesis(), 1)[0]
	vd := chain.VoteDataFor(n.Block, n.Info)
	vote := &chain.Vote{VoteData: vd, LedgerInfo: chain.LedgerInfo{ConsensusDataHash: vd.Hash()}, Author: f.v.Signers[0].ID(), Signature: []byte{1, 2, 3}}
	for _, want := range []store.SafetyData{
		{Epoch: 1, LastVotedRound: 1},
		{Epoch: 1, LastVotedRound: 7, PreferredRound: 5, HighestTimeoutRound: 6, LastVote: vote},
	} {
		if err := st.SaveSafetyData(want); err != nil {
			t.Fatal(err)
		}
		got, err := st.SafetyData()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(mustEncode(t, &got), mustEncode(t, &want)) {
			t.Fatalf("SafetyData = %+v, want %+v", got, want)
		}
	}
}

func TestSaveTreeAndPrune(t *testing.T) {
	f := newFixture(1, 2)
	path := tempPath(t)
	st := openStore(t, path, f.v.Genesis)
	nodes := f.b.Extend(f.b.Genesis(), 5)
	fork := f.b.Child(nodes[1], 9) // a branch off nodes[1]
	for _, n := range append(nodes, fork) {
		if err := st.SaveTree([]*chain.Block{n.Block}, []chain.QuorumCert{n.QC}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	st = openStore(t, path, f.v.Genesis)
	defer st.Close()
	rd, err := st.Recover()
	if err != nil {
		t.Fatal(err)
	}
	want := append(chaintest.Blocks(nodes), fork.Block)
	if len(rd.Blocks) != len(want) || len(rd.QCs) != len(want) {
		t.Fatalf("recovered %d blocks and %d QCs, want %d", len(rd.Blocks), len(rd.QCs), len(want))
	}
	for i := range want {
		if !bytes.Equal(mustEncode(t, rd.Blocks[i]), mustEncode(t, want[i])) {
			t.Fatalf("block %d = %v, want %v", i, rd.Blocks[i], want[i])
		}
		if rd.QCs[i].CertifiedBlock().ID != want[i].ID {
			t.Fatalf("QC %d certifies %s, want %s", i, rd.QCs[i].CertifiedBlock().ID.Short(), want[i].ID.Short())
		}
	}

	// A QC must come with its block or after it.
	orphan := f.b.Child(nodes[4], 20)
	if err := st.SaveTree(nil, []chain.QuorumCert{orphan.QC}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("SaveTree of a QC without its block: %v, want ErrInvalid", err)
	}

	// The ledger's committed block (here genesis) cannot be pruned.
	if err := st.PruneTree([]chain.Hash{nodes[4].Block.ID, f.v.Genesis.Block().ID}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("PruneTree of the root: %v, want ErrInvalid", err)
	}

	// Prune the fork and nodes[3..4]: they and their QCs disappear.
	if err := st.PruneTree([]chain.Hash{fork.Block.ID, nodes[3].Block.ID, nodes[4].Block.ID, {7}}); err != nil {
		t.Fatal(err)
	}
	rd, err = st.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if len(rd.Blocks) != 3 || len(rd.QCs) != 3 || rd.Blocks[2].ID != nodes[2].Block.ID {
		t.Fatalf("after prune: %d blocks, %d QCs", len(rd.Blocks), len(rd.QCs))
	}
}

func TestLedgerRoundTrip(t *testing.T) {
	f := newFixture(3, 5)
	path := tempPath(t)
	st := openStore(t, path, f.v.Genesis)
	m := newLedgerSim()
	txs := f.b.Txs(40)
	kv, err := chain.EncodeKV([]byte("empty"), nil)
	if err != nil {
		t.Fatal(err)
	}
	dup, err := chain.EncodeKV(txs[0][2:10], []byte("second write"))
	if err != nil {
		t.Fatal(err)
	}
	m.commit(t, st, txs[:1], nil)
	m.commit(t, st, txs[1:17], nil)
	m.commit(t, st, [][]byte{kv, dup, {0x42}}, nil)
	m.commit(t, st, nil, nil) // an empty batch commits nothing new
	m.commit(t, st, txs[17:], nil)
	checkLedger(t, st, m)
	if v, ok, err := st.Get([]byte("empty")); err != nil || !ok || v == nil || len(v) != 0 {
		t.Fatalf("Get of an empty value = %x, %v, %v", v, ok, err)
	}
	if v, ok, err := st.Get([]byte("never")); err != nil || ok || v != nil {
		t.Fatalf("Get of an unset key = %x, %v, %v", v, ok, err)
	}
	st.Close()
	st = openStore(t, path, f.v.Genesis)
	defer st.Close()
	checkLedger(t, st, m)
}

func TestLedgerErrors(t *testing.T) {
	f := newFixture(3, 5)
	st := openStore(t, tempPath(t), f.v.Genesis)
	defer st.Close()
	m := newLedgerSim()
	m.commit(t, st, f.b.Txs(10), nil)

	badFrontier := m.batch(f.b.Txs(1), nil)
	badFrontier.Frontier = badFrontier.Frontier[:len(badFrontier.Frontier)-1]
	emptyKey := m.batch(f.b.Txs(1), nil)
	emptyKey.Writes = append(emptyKey.Writes, ledger.KV{})
	futureLI := m.batch(f.b.Txs(1), &chain.LedgerInfoWithSignatures{LedgerInfo: chain.LedgerInfo{CommitInfo: chain.BlockInfo{Version: 12}}})
	badLevel := m.batch(f.b.Txs(1), nil)
	badLevel.Nodes = append(badLevel.Nodes, ledger.Node{ID: compact.NodeID{Level: 64}})
	stale := m.batch(f.b.Txs(1), nil)
	stale.StartVersion = 3
	kvs := make([][]byte, 3)
	for i := range kvs {
		kvs[i], _ = chain.EncodeKV([]byte{'k', byte(i)}, []byte{'v'})
	}
	unsorted := m.batch(kvs, nil)
	unsorted.Writes[0], unsorted.Writes[1] = unsorted.Writes[1], unsorted.Writes[0]
	wrongTx := m.batch(kvs, nil)
	wrongTx.Writes[0].Version++
	outside := m.batch(kvs, nil)
	outside.Writes[2].Version += 5
	missingNode := m.batch(kvs, nil)
	missingNode.Nodes = missingNode.Nodes[1:]
	swappedNodes := m.batch(kvs, nil)
	swappedNodes.Nodes[0], swappedNodes.Nodes[1] = swappedNodes.Nodes[1], swappedNodes.Nodes[0]
	tests := []struct {
		name    string
		run     func() error
		wantErr error
	}{
		{"txs past version", func() error { _, err := st.Txs(5, 6); return err }, store.ErrNotAvailable},
		{"txs start past version", func() error { _, err := st.Txs(11, 0); return err }, store.ErrNotAvailable},
		{"txs overflow", func() error { _, err := st.Txs(2, ^uint64(0)); return err }, store.ErrNotAvailable},
		{"txs at version", func() error { _, err := st.Txs(10, 0); return err }, nil},
		{"node not stored", func() error { _, err := st.Nodes([]compact.NodeID{compact.NewNodeID(0, 10)}); return err }, store.ErrNotAvailable},
		{"node level too high", func() error { _, err := st.Nodes([]compact.NodeID{{Level: 300}}); return err }, store.ErrNotAvailable},
		{"node stored", func() error { _, err := st.Nodes([]compact.NodeID{compact.NewNodeID(3, 0)}); return err }, nil},
		{"nil batch", func() error { return st.Commit(nil) }, store.ErrInvalid},
		{"batch at wrong version", func() error { return st.Commit(stale) }, store.ErrVersionMismatch},
		{"batch frontier size", func() error { return st.Commit(badFrontier) }, store.ErrInvalid},
		{"batch empty key", func() error { return st.Commit(emptyKey) }, store.ErrInvalid},
		{"batch ledger info ahead", func() error { return st.Commit(futureLI) }, store.ErrInvalid},
		{"batch node level", func() error { return st.Commit(badLevel) }, store.ErrInvalid},
		{"batch writes out of order", func() error { return st.Commit(unsorted) }, store.ErrInvalid},
		{"batch write names another tx", func() error { return st.Commit(wrongTx) }, store.ErrInvalid},
		{"batch write outside the batch", func() error { return st.Commit(outside) }, store.ErrInvalid},
		{"batch node missing", func() error { return st.Commit(missingNode) }, store.ErrInvalid},
		{"batch nodes out of order", func() error { return st.Commit(swappedNodes) }, store.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}
	var ve *store.VersionError
	if err := st.Commit(stale); !errors.As(err, &ve) || ve.Committed != 10 || ve.Start != 3 {
		t.Fatalf("Commit at version 3: %v, want a VersionError{10, 3}", err)
	}
	checkLedger(t, st, m) // nothing of the refused batches was written
}

// TestCommitTree: CommitTree saves blocks, commits a ledger batch and prunes
// in one transaction; when a part fails, nothing of it is written.
func TestCommitTree(t *testing.T) {
	f := newFixture(2, 3)
	path := tempPath(t)
	st := openStore(t, path, f.v.Genesis)
	nodes := f.b.Extend(f.b.Genesis(), 6)
	// An earlier insert saved blocks 1 and 2.
	if err := st.SaveTree(chaintest.Blocks(nodes[:2]), []chain.QuorumCert{nodes[0].QC, nodes[1].QC}); err != nil {
		t.Fatal(err)
	}
	l, err := ledger.New(st, f.v.Genesis)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if _, err := l.Execute(n.Block); err != nil {
			t.Fatal(err)
		}
	}
	// The QC on block 5 commits block 3: blocks 1 to 3 are archived, 3 to
	// 5 (the new root and what follows) saved in the tree.
	commitCert := nodes[4].QC
	save := chaintest.Blocks(nodes[2:5])
	qcs := []chain.QuorumCert{nodes[2].QC, nodes[3].QC, nodes[4].QC}
	commit := func(prune []chain.Hash) error {
		return l.CommitWith(chaintest.Blocks(nodes[:3]), &commitCert.SignedLedgerInfo, func(b *ledger.Batch) error {
			return st.CommitTree(b, save, qcs, prune)
		})
	}

	// Pruning the new root is refused: no block saved, nothing committed.
	if err := commit([]chain.Hash{nodes[2].Block.ID}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("CommitTree pruning the new root: %v, want ErrInvalid", err)
	}
	if c, err := st.Committed(); err != nil || c.Version != 0 {
		t.Fatalf("after a failed CommitTree: version %d, %v; want 0", c.Version, err)
	}
	if rd, err := st.Recover(); err != nil || len(rd.Blocks) != 2 {
		t.Fatalf("after a failed CommitTree: %v blocks recovered, %v; want 2", len(rd.Blocks), err)
	}

	gone := []chain.Hash{f.v.Genesis.Block().ID, nodes[0].Block.ID, nodes[1].Block.ID}
	if err := commit(gone); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st = openStore(t, path, f.v.Genesis)
	defer st.Close()
	rd, err := st.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if rd.Root.Block.ID != nodes[2].Block.ID || len(rd.Blocks) != 2 || len(rd.Stale) != 0 || rd.SyncTarget != nil {
		t.Fatalf("recovered root round %d, %d blocks, %d stale, sync target %v; want root 3, 2 blocks, none stale, no target",
			rd.Root.Block.Round(), len(rd.Blocks), len(rd.Stale), rd.SyncTarget)
	}
	for _, n := range nodes[:3] {
		if cb, ok, err := st.Block(n.Block.ID); err != nil || !ok || cb.Block.ID != n.Block.ID {
			t.Fatalf("block %d not archived: %v, %v", n.Block.Round(), ok, err)
		}
	}
}
