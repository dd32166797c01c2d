package chaintest

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/statetree"
)

// Once a lineage holds more than pruneAbove nodes, only the state trees of
// its last keepBlocks blocks are kept whole: a fork from a block further
// behind its lineage's last block cannot be built then. It bounds the
// builder's memory on long chains, and keeps every tree of short ones.
const (
	pruneAbove = 1 << 20
	keepBlocks = 64
)

// trees holds the state trees of one lineage of built blocks: the nodes
// its blocks wrote, over those of the lineage it forked from (base). Its
// tip is the last block built on it; a child of another block forks.
type trees struct {
	nodes  map[statetree.NodeKey]*statetree.Node
	stale  []statetree.StaleNode
	base   *trees
	tip    *Node
	recent []uint64 // versions of the last blocks built, oldest first
}

func newTrees(base *trees, tip *Node) *trees {
	return &trees{nodes: make(map[statetree.NodeKey]*statetree.Node), base: base, tip: tip}
}

// Node implements [statetree.NodeReader].
func (t *trees) Node(k statetree.NodeKey) (*statetree.Node, error) {
	for s := t; s != nil; s = s.base {
		if n, ok := s.nodes[k]; ok {
			return n, nil
		}
	}
	return nil, fmt.Errorf("%w: %d/%d (chaintest keeps the trees of the last %d blocks of a long lineage)",
		statetree.ErrNodeNotFound, k.Version, k.Depth, keepBlocks)
}

// apply stores b, then deletes the nodes no tree of the last keepBlocks
// blocks needs.
func (t *trees) apply(b *statetree.Batch) {
	for _, e := range b.Nodes {
		t.nodes[e.Key] = e.Node
	}
	t.stale = append(t.stale, b.Stale...)
	t.recent = append(t.recent, b.Version)
	if len(t.recent) < 2*keepBlocks || len(t.nodes) <= pruneAbove {
		return
	}
	keep := t.recent[len(t.recent)-keepBlocks]
	t.recent = slices.Delete(t.recent, 0, len(t.recent)-keepBlocks)
	rest := t.stale[:0]
	for _, s := range t.stale {
		if s.StaleSince > keep {
			rest = append(rest, s)
		} else {
			delete(t.nodes, s.Key)
		}
	}
	t.stale = rest
}

// childTree gives child, a child of parent with the transactions txs at
// version, its place among the trees, and returns its state root.
func (parent *Node) childTree(child *Node, txs [][]byte, version uint64) chain.Hash {
	t := parent.trees
	if t.tip != parent {
		t = newTrees(parent.trees, nil)
	}
	t.tip, child.trees = child, t
	if len(txs) == 0 {
		return parent.Info.StateRoot
	}
	base := parent.Info.Version
	if base == 0 {
		base = statetree.Empty
	}
	tb, err := statetree.New(t).Update(base, version, treeWrites(txs))
	if err != nil {
		panic(fmt.Sprintf("chaintest: state tree of a child of %s: %v", parent.Block.ID.Short(), err))
	}
	t.apply(tb)
	return tb.Root
}

// treeWrites returns the state writes of txs as the ledger makes them: the
// last write of each key, sorted by the hash of the key.
func treeWrites(txs [][]byte) []statetree.Write {
	last := make(map[string]int)
	var ws []statetree.Write
	for _, tx := range txs {
		k, v, err := chain.DecodeKV(tx)
		if err != nil {
			continue
		}
		w := statetree.Write{KeyHash: statetree.KeyHash(k), Key: k, Value: v}
		if i, ok := last[string(k)]; ok {
			ws[i] = w
			continue
		}
		last[string(k)] = len(ws)
		ws = append(ws, w)
	}
	slices.SortFunc(ws, func(a, b statetree.Write) int { return bytes.Compare(a.KeyHash[:], b.KeyHash[:]) })
	return ws
}
