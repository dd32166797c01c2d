package blockstore_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/blockstore"
	"github.com/p2pnode/p2pnode/chain/blocktree"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/chain/store"
)

// memPersister is a MemPersister whose writes fail while fail is set.
type memPersister struct {
	*blockstore.MemPersister
	fail error
}

func newMemPersister() *memPersister {
	return &memPersister{MemPersister: blockstore.NewMemPersister()}
}

func (p *memPersister) SaveTree(blocks []*chain.Block, qcs []chain.QuorumCert) error {
	if p.fail != nil {
		return p.fail
	}
	return p.MemPersister.SaveTree(blocks, qcs)
}

func genesisRoot(v *chaintest.Validators) blocktree.Root {
	return blocktree.GenesisRoot(v.Genesis)
}

type fixture struct {
	v       *chaintest.Validators
	b       *chaintest.Builder
	l       *ledger.Ledger
	p       *memPersister
	s       *blockstore.Store
	commits [][]chain.Hash
	qcs     []uint64 // rounds the OnQC hook was told about
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{v: chaintest.NewValidators(7, 4), p: newMemPersister()}
	f.b = chaintest.NewBuilder(f.v, chaintest.BuilderConfig{TxsPerBlock: 5, TxSize: 40})
	var err error
	if f.l, err = ledger.New(ledger.NewMemStorage(), f.v.Genesis); err != nil {
		t.Fatal(err)
	}
	cfg := blockstore.Config{OnCommit: func(bs []*chain.Block, _ chain.QuorumCert) {
		var ids []chain.Hash
		for _, b := range bs {
			ids = append(ids, b.ID)
		}
		f.commits = append(f.commits, ids)
	}, OnQC: func(qc chain.QuorumCert) { f.qcs = append(f.qcs, qc.Round()) }}
	if f.s, err = blockstore.New(f.l, f.p, genesisRoot(f.v), nil, nil, cfg); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestInsertOneByOneCommitsAndPrunes(t *testing.T) {
	f := newFixture(t)
	nodes := f.b.Extend(f.b.Genesis(), 10)
	for _, n := range nodes {
		if err := f.s.InsertQC(*n.Block.QC()); err != nil {
			t.Fatal(err)
		}
		info, err := f.s.ExecuteAndInsertBlock(n.Block)
		if err != nil {
			t.Fatal(err)
		}
		if info != n.Info {
			t.Fatalf("executed %v, want %v", info, n.Info)
		}
	}
	if err := f.s.InsertQC(nodes[9].QC); err != nil {
		t.Fatal(err)
	}
	// QC on block 10 (round 10) commits round 8.
	if got := f.s.Root().Info; got != nodes[7].Info {
		t.Fatalf("root %v, want round 8", got.Round)
	}
	if got := f.l.Committed(); got != nodes[7].Info {
		t.Fatalf("ledger committed round %d, want 8", got.Round)
	}
	var all []chain.Hash
	for _, c := range f.commits {
		all = append(all, c...)
	}
	want := []chain.Hash{}
	for _, n := range nodes[:8] {
		want = append(want, n.Block.ID)
	}
	if !slices.Equal(all, want) {
		t.Fatalf("committed %d blocks in order %v, want the first 8", len(all), all)
	}
	// Committed blocks left the tree but are served from the archive.
	if f.s.BlockExists(nodes[3].Block.ID) {
		t.Fatal("committed block 4 still in the tree")
	}
	if b, ok := f.s.GetBlock(nodes[3].Block.ID); !ok || b.ID != nodes[3].Block.ID {
		t.Fatal("committed block 4 not served from the archive")
	}
	if f.p.HasBlock(nodes[3].Block.ID) {
		t.Fatal("committed block 4 still persisted in the tree buckets")
	}
}

func TestInsertChainCommitsOnce(t *testing.T) {
	f := newFixture(t)
	nodes := f.b.Extend(f.b.Genesis(), 50)
	if err := f.s.InsertChain(chaintest.Blocks(nodes)); err != nil {
		t.Fatal(err)
	}
	// The last embedded QC is block 50's, certifying 49 and committing 47.
	if got := f.s.Root().Info.Round; got != 47 {
		t.Fatalf("root round %d, want 47", got)
	}
	if len(f.commits) != 1 || len(f.commits[0]) != 47 {
		t.Fatalf("commits %d, want one of 47 blocks", len(f.commits))
	}
	if err := f.s.InsertQC(nodes[49].QC); err != nil {
		t.Fatal(err)
	}
	if got := f.s.Root().Info.Round; got != 48 {
		t.Fatalf("root round %d after the last QC, want 48", got)
	}
}

func TestInsertErrors(t *testing.T) {
	f := newFixture(t)
	nodes := f.b.Extend(f.b.Genesis(), 3)
	if _, err := f.s.ExecuteAndInsertBlock(nodes[1].Block); !errors.Is(err, blocktree.ErrMissingParent) {
		t.Fatalf("orphan block: %v, want ErrMissingParent", err)
	}
	if err := f.s.InsertQC(nodes[1].QC); !errors.Is(err, blocktree.ErrMissingBlock) {
		t.Fatalf("QC of unknown block: %v, want ErrMissingBlock", err)
	}
	f.p.fail = errors.New("disk full")
	if _, err := f.s.ExecuteAndInsertBlock(nodes[0].Block); err == nil || f.s.BlockExists(nodes[0].Block.ID) {
		t.Fatalf("a block that could not be persisted entered the tree (err %v)", err)
	}
}

func TestRebuildAfterStateSync(t *testing.T) {
	server := newFixture(t)
	nodes := server.b.Extend(server.b.Genesis(), 20)
	if err := server.s.InsertChain(chaintest.Blocks(nodes)); err != nil {
		t.Fatal(err)
	}
	// The client state-syncs to the commit of round 10 (QC on 12), then rebuilds.
	f := newFixture(t)
	b0, b1, b2 := nodes[9], nodes[10], nodes[11]
	target := &b2.QC.SignedLedgerInfo
	for f.l.Version() < target.LedgerInfo.CommitInfo.Version {
		c, err := server.l.GetChunk(f.l.Version(), target.LedgerInfo.CommitInfo.Version, 7)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.l.ApplyChunk(c, target); err != nil {
			t.Fatal(err)
		}
	}
	root := blocktree.Root{Block: b0.Block, Info: b0.QC.CertifiedBlock(), QC: b0.QC, LedgerInfo: b2.QC}
	if err := f.s.Rebuild(root, []*chain.Block{b1.Block, b2.Block}, []chain.QuorumCert{b1.QC, b2.QC}); err != nil {
		t.Fatal(err)
	}
	if f.s.Root().Info != b0.Info || !f.s.BlockExists(b2.Block.ID) {
		t.Fatal("tree not rebuilt on B0 with B1, B2")
	}
	// The chain continues on top of the rebuilt tree.
	if err := f.s.InsertChain(chaintest.Blocks(nodes[12:])); err != nil {
		t.Fatal(err)
	}
	if got := f.l.Committed().Round; got != 17 { // block 20 carries the QC on 19, committing 17
		t.Fatalf("committed round %d, want 17", got)
	}
}

// openChain builds a chain of n blocks from validators of seed and opens a
// fresh block store on disk for it.
func openChain(t *testing.T, seed uint64, n int) (*chaintest.Validators, []*chaintest.Node, string, *blockstore.Opened) {
	t.Helper()
	v := chaintest.NewValidators(seed, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 5, TxSize: 40})
	nodes := b.Extend(b.Genesis(), n)
	path := t.TempDir() + "/store.db"
	o, err := blockstore.Open(path, v.Genesis, blockstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return v, nodes, path, o
}

func TestOpenReopen(t *testing.T) {
	v, nodes, path, o := openChain(t, 7, 30)
	if err := o.Blocks.InsertChain(chaintest.Blocks(nodes[:20])); err != nil {
		t.Fatal(err)
	}
	committed, highest := o.Ledger.Committed(), o.Blocks.HighestQC()
	if err := o.Disk.Close(); err != nil {
		t.Fatal(err)
	}
	o, err := blockstore.Open(path, v.Genesis, blockstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Disk.Close()
	if got := o.Ledger.Committed(); got != committed {
		t.Fatalf("committed round %d after reopen, want %d", got.Round, committed.Round)
	}
	if got := o.Blocks.HighestQC(); got.CertifiedBlock() != highest.CertifiedBlock() {
		t.Fatalf("highest QC round %d after reopen, want %d", got.Round(), highest.Round())
	}
	if o.SyncTarget != nil {
		t.Fatal("sync target after a clean run")
	}
	// The chain goes on where it stopped, and committed blocks are served.
	if err := o.Blocks.InsertChain(chaintest.Blocks(nodes[20:])); err != nil {
		t.Fatal(err)
	}
	if got := o.Ledger.Committed().Round; got != 27 {
		t.Fatalf("committed round %d, want 27", got)
	}
	if blk, ok := o.Blocks.GetBlock(nodes[4].Block.ID); !ok || blk.ID != nodes[4].Block.ID || len(blk.Payload()) != 5 {
		t.Fatal("archived block 5 not served with its payload")
	}
}

// TestOpenAfterStopBeforeCommit: over a persister that cannot write the
// tree and the commit in one transaction, InsertChain saves the new root
// and its descendants in the tree before the commit that archives their
// ancestors. A process that stops between the two writes finds, on
// restart, the persisted 3-chain as a sync target, which the syncer
// fast-forwards to.
func TestOpenAfterStopBeforeCommit(t *testing.T) {
	v, nodes, path, o := openChain(t, 8, 20)
	// What InsertChain(nodes) writes first: block 17, which block 20's QC
	// commits, and what follows it, with the QCs certifying them.
	const k = 16
	var qcs []chain.QuorumCert
	for _, n := range nodes[k+1:] {
		qcs = append(qcs, *n.Block.QC())
	}
	if err := o.Disk.SaveTree(chaintest.Blocks(nodes[k:]), qcs); err != nil {
		t.Fatal(err)
	}
	if err := o.Disk.Close(); err != nil {
		t.Fatal(err)
	}
	o, err := blockstore.Open(path, v.Genesis, blockstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Disk.Close()
	if got := o.Ledger.Committed().Round; got != 0 {
		t.Fatalf("committed round %d after reopen, want 0", got)
	}
	st := o.SyncTarget
	if st == nil {
		t.Fatal("no sync target after a stop before the commit")
	}
	for i, blk := range st.Blocks {
		if blk.ID != nodes[k+i].Block.ID {
			t.Fatalf("sync target block %d is round %d, want %d", i, blk.Round(), nodes[k+i].Block.Round())
		}
	}
}

// TestOnQC: the hook hears of each rise of the highest QC, once per insert,
// and not of a QC that raises nothing.
func TestOnQC(t *testing.T) {
	f := newFixture(t)
	nodes := f.b.Extend(f.b.Genesis(), 10)
	for _, n := range nodes[:3] {
		if _, err := f.s.ExecuteAndInsertBlock(n.Block); err != nil {
			t.Fatal(err)
		}
		if err := f.s.InsertQC(n.QC); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.s.InsertQC(nodes[1].QC); err != nil { // known, lower
		t.Fatal(err)
	}
	if err := f.s.InsertChain(chaintest.Blocks(nodes[3:])); err != nil {
		t.Fatal(err)
	}
	// Block 10's QC certifies block 9: InsertChain raised it to round 9.
	if want := []uint64{1, 2, 3, 9}; !slices.Equal(f.qcs, want) {
		t.Fatalf("OnQC heard rounds %v, want %v", f.qcs, want)
	}
}

// flakyDisk is a store whose next CommitTree fails while fail is set.
type flakyDisk struct {
	*store.Store
	fail bool
}

var errDiskFull = errors.New("disk full")

func (f *flakyDisk) CommitTree(b *ledger.Batch, blocks []*chain.Block, qcs []chain.QuorumCert, prune []chain.Hash) error {
	if f.fail {
		f.fail = false
		return errDiskFull
	}
	return f.Store.CommitTree(b, blocks, qcs, prune)
}

// TestFailedCommitTreeChangesNothing: when the one transaction of an insert
// and its commit fails, the block store is as before the call, so that what
// follows (here the consensus path: a QC, a block, the QC committing it)
// keeps the tree and its storage in step, and the store opens again.
func TestFailedCommitTreeChangesNothing(t *testing.T) {
	v := chaintest.NewValidators(3, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 2, TxSize: 20})
	nodes := b.Extend(b.Genesis(), 12)
	path := t.TempDir() + "/store.db"
	disk, err := store.Open(path, v.Genesis)
	if err != nil {
		t.Fatal(err)
	}
	defer disk.Close()
	fl := &flakyDisk{Store: disk, fail: true}
	l, err := ledger.New(fl, v.Genesis)
	if err != nil {
		t.Fatal(err)
	}
	s, err := blockstore.New(l, fl, blocktree.GenesisRoot(v.Genesis), nil, nil, blockstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	// Blocks 1 to 5: block 5's QC (on 4) commits 2. The write fails.
	if err := s.InsertChain(chaintest.Blocks(nodes[:5])); !errors.Is(err, errDiskFull) {
		t.Fatalf("InsertChain: %v, want the write's error", err)
	}
	if s.BlockExists(nodes[0].Block.ID) || l.Committed().Round != 0 {
		t.Fatal("a failed insert left blocks in the tree or a commit in the ledger")
	}
	// The same blocks again, then the consensus path on top.
	if err := s.InsertChain(chaintest.Blocks(nodes[:5])); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertQC(*nodes[5].Block.QC()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ExecuteAndInsertBlock(nodes[5].Block); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertQC(*nodes[6].Block.QC()); err != nil { // the QC on 6 commits 4
		t.Fatal(err)
	}
	committed := l.Committed()
	if err := disk.Close(); err != nil {
		t.Fatal(err)
	}
	o, err := blockstore.Open(path, v.Genesis, blockstore.Config{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer o.Disk.Close()
	if got := o.Ledger.Committed(); got != committed || o.SyncTarget != nil {
		t.Fatalf("reopened at round %d (sync target %v), want %d", got.Round, o.SyncTarget, committed.Round)
	}
}
