package chaintest

import (
	"encoding/binary"
	"math/rand/v2"

	"github.com/p2pnode/p2pnode/chain"
)

// BuilderConfig says what the blocks of a [Builder] contain.
type BuilderConfig struct {
	// TxsPerBlock is the number of transactions of each block built by
	// [Builder.Child].
	TxsPerBlock int
	// TxSize is the size of each generated transaction in bytes. Sizes of
	// 11 bytes or more give key/value transactions with 8-byte keys
	// (distinct unless Keys is set) and random values; smaller sizes give
	// opaque random bytes. 0 means 100.
	TxSize int
	// Signers are the indexes of the validators that sign every QC; nil means
	// all of them.
	Signers []int
	// Seed seeds the generated transactions.
	Seed uint64
	// Keys, if positive, bounds the state: the i-th key/value transaction
	// built writes key i mod Keys, so that a long history overwrites a
	// state of Keys keys. 0 gives every transaction a fresh key.
	Keys int
}

// Node is a built block with its execution result and the QC that certifies
// it.
type Node struct {
	Block *chain.Block
	// Info is the block as executed by the chain's accumulator and state
	// tree.
	Info chain.BlockInfo
	// QC certifies Block; it commits the grandparent when the three rounds
	// are consecutive.
	QC    chain.QuorumCert
	acc   *chain.Accumulator
	trees *trees // the state trees of its lineage
}

// Round returns the node's round.
func (n *Node) Round() uint64 { return n.Block.Round() }

// Builder builds valid, fully signed chains and forks on top of one genesis.
// Nodes share the state trees of their lineage, of which only those of the
// last 64 blocks are kept, so long chains can be built and dropped
// piecewise; a fork must start from one of those blocks. A Builder is not safe for concurrent use.
type Builder struct {
	V       *Validators
	cfg     BuilderConfig
	rng     *rand.Rand
	genesis *Node
	nextKey uint64
}

// NewBuilder returns a builder of chains of the validators v.
func NewBuilder(v *Validators, cfg BuilderConfig) *Builder {
	if cfg.TxSize == 0 {
		cfg.TxSize = 100
	}
	if cfg.Signers == nil {
		cfg.Signers = v.All()
	}
	g := v.Genesis.Block()
	gen := &Node{Block: g, Info: v.Genesis.BlockInfo(), QC: v.Genesis.QC(), acc: chain.NewAccumulator()}
	gen.trees = newTrees(nil, gen)
	return &Builder{V: v, cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x7478)), genesis: gen}
}

// Genesis returns the genesis node.
func (b *Builder) Genesis() *Node { return b.genesis }

// Txs returns n fresh transactions of the configured size.
func (b *Builder) Txs(n int) [][]byte {
	txs := make([][]byte, n)
	for i := range txs {
		txs[i] = b.tx()
	}
	return txs
}

func (b *Builder) tx() []byte {
	size := b.cfg.TxSize
	tx := make([]byte, size)
	for i := range tx {
		tx[i] = byte(b.rng.Uint32())
	}
	if size >= 11 {
		tx[0], tx[1] = chain.TxKindKV, 8
		key := b.nextKey
		if b.cfg.Keys > 0 {
			key %= uint64(b.cfg.Keys)
		}
		binary.BigEndian.PutUint64(tx[2:10], key)
		b.nextKey++
	}
	return tx
}

// Child builds a block of round on top of parent, proposed by the round's
// round-robin leader, with fresh transactions, and certifies it.
func (b *Builder) Child(parent *Node, round uint64) *Node {
	return b.ChildWith(parent, round, b.V.Leader(round), b.Txs(b.cfg.TxsPerBlock))
}

// ChildWith builds a block of round on top of parent, proposed by author with
// the given transactions, executes it and certifies it with a QC signed by
// the configured signers. The timestamp advances 1 ms per round.
func (b *Builder) ChildWith(parent *Node, round uint64, author *chain.Signer, txs [][]byte) *Node {
	ts := parent.Info.TimestampUsecs + 1000*(round-parent.Round())
	blk := chain.NewProposal(author, round, ts, parent.QC, txs)
	acc := parent.acc.Clone()
	for _, tx := range txs {
		acc.Append(tx)
	}
	n := &Node{Block: blk, acc: acc}
	n.Info = blk.Info(acc.Root(), parent.childTree(n, txs, acc.Size()), acc.Size())
	vd := chain.VoteDataFor(blk, n.Info)
	commit, _ := chain.CommitInfo(n.Info, blk.QC())
	n.QC = b.V.SignQC(vd, commit, b.cfg.Signers)
	return n
}

// Extend builds n blocks in consecutive rounds on top of parent and returns
// them oldest first. Every QC from the third block on commits a block.
func (b *Builder) Extend(parent *Node, n int) []*Node {
	out := make([]*Node, 0, n)
	for range n {
		parent = b.Child(parent, parent.Round()+1)
		out = append(out, parent)
	}
	return out
}

// Accumulator returns a copy of the ledger accumulator after n's block.
func (n *Node) Accumulator() *chain.Accumulator { return n.acc.Clone() }

// Blocks returns the blocks of nodes, in order.
func Blocks(nodes []*Node) []*chain.Block {
	out := make([]*chain.Block, len(nodes))
	for i, n := range nodes {
		out[i] = n.Block
	}
	return out
}
