package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/internal/prefixsort"
	"github.com/p2pnode/p2pnode/chain/statetree"
)

// ErrStateRoot: the state tree's root after executing blocks, or applying
// chunks, is not the one the quorum signed. The transactions were verified
// against the signed accumulator root by then, and execution is
// deterministic: the mismatch is the quorum's or this node's, never the
// fault of the peer that sent the data.
var ErrStateRoot = errors.New("ledger: state root does not match the signed one")

// treeBase returns the state tree version of a ledger of version v: the
// version itself, or statetree.Empty for the empty ledger, which stores no
// tree.
func treeBase(v uint64) uint64 {
	if v == 0 {
		return statetree.Empty
	}
	return v
}

// stateTree is the state tree's update of one block, or of a run of blocks
// whose roots were deferred, indexed so that the updates of its
// descendants can read its nodes before it commits.
type stateTree struct {
	batch *statetree.Batch
	base  uint64 // the tree version it was computed on
	nodes map[statetree.NodeKey]*statetree.Node
}

func newStateTree(b *statetree.Batch, base uint64) *stateTree {
	t := &stateTree{batch: b, base: base, nodes: make(map[statetree.NodeKey]*statetree.Node, len(b.Nodes))}
	for _, e := range b.Nodes {
		t.nodes[e.Key] = e.Node
	}
	return t
}

// view reads the nodes of uncommitted trees, newest first and each of its
// own version, before those of the storage: the state tree after an
// executed block. Nodes of trees that commit meanwhile are in both.
type view struct {
	trees []*stateTree
	st    statetree.NodeReader
}

// Node implements [statetree.NodeReader].
func (v *view) Node(k statetree.NodeKey) (*statetree.Node, error) {
	for _, t := range v.trees {
		if t.batch.Version == k.Version {
			if n, ok := t.nodes[k]; ok {
				return n, nil
			}
			break
		}
	}
	return v.st.Node(k)
}

// treeWrites returns the writes of kvs (one per key) in the order the
// state tree takes them: by the SHA-256 of their keys.
func treeWrites(kvs []KV) []statetree.Write {
	ws := make([]statetree.Write, len(kvs))
	for i, kv := range kvs {
		ws[i] = statetree.Write{KeyHash: statetree.KeyHash(kv.Key), Key: kv.Key, Value: kv.Value}
	}
	ws = prefixsort.Stable(ws, func(w *statetree.Write) uint64 { return binary.BigEndian.Uint64(w.KeyHash[:8]) })
	for from := 0; from < len(ws); {
		to := from + 1
		for to < len(ws) && bytes.Equal(ws[to].KeyHash[:8], ws[from].KeyHash[:8]) {
			to++
		}
		if to-from > 1 {
			slices.SortFunc(ws[from:to], func(a, b statetree.Write) int { return bytes.Compare(a.KeyHash[:], b.KeyHash[:]) })
		}
		from = to
	}
	return ws
}

// ownsTree reports whether r's version is above its parent's: only then
// does the block have a tree of its own (else it shares its parent's).
func (r *result) ownsTree() bool { return len(r.txs) > 0 }

// lineage returns r and its uncommitted ancestors, newest first: up to the
// first whose parent has no result, normally the committed block. (A block
// of a dead fork may descend from a committed block below the committed
// one: the nodes of both are in the storage.) l.mu is held.
func (l *Ledger) lineage(r *result) []*result {
	out := []*result{r}
	for a, ok := l.results[r.parent]; ok; a, ok = l.results[a.parent] {
		out = append(out, a)
	}
	return out
}

// viewOf returns the state tree after the newest result of lineage (a
// lineage as [Ledger.lineage] returns it), reading the committed tree from
// the storage, once the trees it needs are computed: the newest result
// that owns a tree gets it first. Its version is the tree version of the
// lineage's newest block.
func (l *Ledger) viewOf(lineage []*result) (*view, error) {
	for i, r := range lineage {
		if r.ownsTree() {
			if err := l.materialize(lineage[i:]); err != nil {
				return nil, err
			}
			break
		}
	}
	return l.viewOver(lineage), nil
}

// viewOver returns the view of the trees rs have (newest first) over the
// storage.
func (l *Ledger) viewOver(rs []*result) *view {
	v := &view{st: l.st}
	for _, r := range rs {
		if t := r.loadTree(); t != nil {
			v.trees = append(v.trees, t)
		}
	}
	return v
}

// materialize gives lineage[0], which owns a tree, its tree if it has none
// yet: one update of the writes of every block since its newest ancestor
// that has a tree (or since the committed block), whose root must be the
// signed one, lineage[0]'s info.StateRoot. The blocks between keep no tree
// of their own.
func (l *Ledger) materialize(lineage []*result) error {
	r := lineage[0]
	r.treeMu.Lock()
	defer r.treeMu.Unlock()
	if r.loadTree() != nil {
		return nil
	}
	j := 1
	for j < len(lineage) && lineage[j].loadTree() == nil {
		j++
	}
	// lineage[1:j] have no tree: their writes go into r's update.
	run := lineage[:j]
	start := r.info.Version
	n := 0
	for _, a := range run {
		start -= uint64(len(a.txs))
		n += len(a.txs)
	}
	txs := make([][]byte, 0, n)
	for i := len(run) - 1; i >= 0; i-- {
		txs = append(txs, run[i].txs...)
	}
	b, err := statetree.New(l.viewOver(lineage[j:])).Update(treeBase(start), r.info.Version, treeWrites(stateWrites(start, txs)))
	if err != nil {
		return fmt.Errorf("ledger: state of %s: %w", r.info.ID.Short(), err)
	}
	if b.Root != r.info.StateRoot {
		return fmt.Errorf("%w: block %s version %d: computed %s, signed %s",
			ErrStateRoot, r.info.ID.Short(), r.info.Version, b.Root.Short(), r.info.StateRoot.Short())
	}
	r.storeTree(newStateTree(b, treeBase(start)))
	return nil
}

// VerifyState computes the state tree of the executed block id if its
// root was deferred ([Ledger.ExecuteCertified]) and checks that root
// against the signed one (ErrStateRoot), settling the durable tree first if
// it lags. Checking a block also checks the blocks between it and the
// committed block, whose trees are then never computed on their own; a
// commit of the path to it then stores its tree. The committed block is
// always checked.
func (l *Ledger) VerifyState(id chain.Hash) error {
	l.mu.Lock()
	r, ok := l.results[id]
	if !ok {
		committed := l.committed.ID
		l.mu.Unlock()
		if id == committed {
			return nil
		}
		return fmt.Errorf("%w: %s", ErrNotExecuted, id.Short())
	}
	lineage := l.lineage(r)
	l.mu.Unlock()
	if err := l.settleIfBehind(); err != nil {
		return err
	}
	_, err := l.viewOf(lineage)
	return err
}

// durableStateRoot returns the root of the state tree of the durable
// ledger at version.
func durableStateRoot(st statetree.NodeReader, version uint64) (chain.Hash, error) {
	if version == 0 {
		return chain.EmptyStateRoot, nil
	}
	n, err := st.Node(statetree.NodeKey{Version: version})
	if err != nil {
		return chain.Hash{}, err
	}
	return n.Hash(), nil
}

// StateRoot returns the root of the durable state tree, of the state at
// TreeVersion().
func (l *Ledger) StateRoot() (chain.Hash, error) {
	return durableStateRoot(l.st, l.TreeVersion())
}

// pathTrees returns the state trees a commit of path (oldest first, from a
// child of the committed block, with treesComputed true) stores, oldest
// first: that of the newest block of path that owns a tree, and those of
// the blocks of path it was computed on, down to the committed tree.
// Blocks whose root was deferred and checked by a descendant store none.
func pathTrees(path []*result) []*statetree.Batch {
	var out []*statetree.Batch
	want := uint64(0)
	for i := len(path) - 1; i >= 0; i-- {
		t := path[i].loadTree()
		switch {
		case t == nil:
		case len(out) == 0 || t.batch.Version == want:
			out = append(out, t.batch)
			want = t.base
		}
	}
	slices.Reverse(out)
	return out
}

// ExecuteCertifiedChain executes blocks, oldest first and each the parent
// of the next, with ExecuteCertified: each but the last is certified by
// the QC of the block after it. The last is left to the caller, who
// executes it once it knows its certificate or needs its state. It stops
// at the first error, which it returns: a pipeline executing ahead of an
// insert leaves the error to the insert, which executes again.
func (l *Ledger) ExecuteCertifiedChain(blocks []*chain.Block) error {
	for i := 0; i+1 < len(blocks); i++ {
		if _, err := l.ExecuteCertified(blocks[i], blocks[i+1].QC().CertifiedBlock()); err != nil {
			return err
		}
	}
	return nil
}

// The durable state tree may lag the transactions, as a stage of its own:
// a commit of blocks whose roots were deferred (a sync's) stores no tree,
// and Settle brings the tree up to the ledger afterwards, in updates of up
// to treeStep transactions read back from the storage, checking the root
// at the committed version. A fresh node's tree is thus built in a few
// large updates, which share the upper nodes of many writes, rather than
// one per block batch; each update's memory is bounded by treeStep.
const treeStep = 1 << 16

// treesComputed reports whether the newest block of path that owns a tree
// has it computed already (or none owns one): a commit of path then
// stores the trees at no cost.
func treesComputed(path []*result) bool {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i].ownsTree() {
			return path[i].loadTree() != nil
		}
	}
	return true
}

// TreeVersion returns the version of the durable state tree: Version(),
// unless the tree lags behind a sync's transactions.
func (l *Ledger) TreeVersion() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.treeVersion
}

// Settle brings the durable state tree up to the durable transactions and
// checks its root at the committed version against the committed block's
// signed one (ErrStateRoot). It takes the ledger's write lock one update at
// a time, so that commits go on meanwhile, and stops between updates when
// ctx ends. A node runs it after a sync; Execute runs it when it must
// compute a state on the committed one.
func (l *Ledger) Settle(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		l.writeMu.Lock()
		done, err := l.settleStep()
		l.writeMu.Unlock()
		if err != nil || done {
			return err
		}
	}
}

// settleIfBehind settles a ledger whose tree lags its transactions.
func (l *Ledger) settleIfBehind() error {
	l.mu.Lock()
	behind := l.treeVersion < l.version
	l.mu.Unlock()
	if !behind {
		return nil
	}
	return l.Settle(context.Background())
}

// settleStep updates the durable state tree by at most treeStep
// transactions towards the durable version, and reports whether it is
// there. writeMu is held.
func (l *Ledger) settleStep() (bool, error) {
	l.mu.Lock()
	from, version, frontier, committed := l.treeVersion, l.version, l.acc.Frontier(), l.committed
	l.mu.Unlock()
	if from >= version {
		return true, nil
	}
	n := min(version-from, treeStep)
	txs, err := l.st.Txs(from, n)
	if err != nil {
		return false, fmt.Errorf("ledger: state tree from version %d: %w", from, err)
	}
	tb, err := statetree.New(l.st).Update(treeBase(from), from+n, treeWrites(stateWrites(from, txs)))
	if err != nil {
		return false, fmt.Errorf("ledger: state tree from version %d: %w", from, err)
	}
	if from+n == committed.Version && tb.Root != committed.StateRoot {
		return false, fmt.Errorf("%w: version %d: computed %s, signed %s", ErrStateRoot, from+n, tb.Root.Short(), committed.StateRoot.Short())
	}
	if err := l.st.Commit(&Batch{StartVersion: version, Frontier: frontier, Tree: []*statetree.Batch{tb}}); err != nil {
		return false, fmt.Errorf("ledger: state tree to version %d: %w", from+n, err)
	}
	l.mu.Lock()
	l.treeVersion = from + n
	l.mu.Unlock()
	return from+n >= version, nil
}
