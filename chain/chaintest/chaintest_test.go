package chaintest_test

import (
	"bytes"
	"crypto/sha256"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
)

func encode(t *testing.T, v any) []byte {
	t.Helper()
	enc, err := chain.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// chainEncoding returns the encodings of every block and QC of a chain of n
// blocks built from seed.
func chainEncoding(t *testing.T, seed uint64, n int) [][]byte {
	t.Helper()
	v := chaintest.NewValidators(seed, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 3, TxSize: 40, Seed: seed})
	out := [][]byte{encode(t, v.Genesis)}
	for _, n := range b.Extend(b.Genesis(), n) {
		out = append(out, encode(t, n.Block), encode(t, &n.QC))
	}
	return out
}

func TestDeterminism(t *testing.T) {
	a, b := chainEncoding(t, 5, 10), chainEncoding(t, 5, 10)
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Fatalf("encoding %d differs between two builds from the same seed", i)
		}
	}
	if bytes.Equal(chainEncoding(t, 6, 1)[0], a[0]) {
		t.Fatal("different seeds give the same genesis")
	}

	v1, v2 := chaintest.NewValidators(5, 4), chaintest.NewValidators(6, 4)
	for _, id := range v1.Set.IDs() {
		if v2.Set.Contains(id) {
			t.Fatalf("validator %s in the sets of two seeds", id)
		}
	}
	k1, k2 := chaintest.Key(5, 0), chaintest.Key(5, 0)
	if !k1.Equals(k2) || k1.Equals(chaintest.Key(5, 1)) || k1.Equals(chaintest.Key(6, 0)) {
		t.Fatal("Key is not a function of (seed, index) alone")
	}
}

// merkleRoot is the RFC 6962 Merkle tree hash of leaves, computed
// recursively and independently of the chain package.
func merkleRoot(leaves [][]byte) chain.Hash {
	switch len(leaves) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return sha256.Sum256(append([]byte{0}, leaves[0]...))
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	l, r := merkleRoot(leaves[:k]), merkleRoot(leaves[k:])
	return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
}

func TestChainVerifies(t *testing.T) {
	v := chaintest.NewValidators(1, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 3, TxSize: 20, Seed: 1})
	nodes := b.Extend(b.Genesis(), 50)
	acc := chain.NewAccumulator()
	var txs [][]byte
	parent := b.Genesis()
	for i, n := range nodes {
		if n.Round() != uint64(i+1) {
			t.Fatalf("block %d has round %d", i, n.Round())
		}
		if err := v.Verifier.VerifyBlock(n.Block); err != nil {
			t.Fatalf("round %d: VerifyBlock: %v", n.Round(), err)
		}
		if err := v.Verifier.VerifyQC(&n.QC); err != nil {
			t.Fatalf("round %d: VerifyQC: %v", n.Round(), err)
		}
		if err := chain.VerifyParent(n.Block, parent.Block); err != nil {
			t.Fatalf("round %d: %v", n.Round(), err)
		}
		if n.QC.CertifiedBlock() != n.Info || n.QC.ParentBlock() != parent.Info {
			t.Fatalf("round %d: QC certifies %+v", n.Round(), n.QC.CertifiedBlock())
		}
		// From round 2 on every QC commits the grandparent (genesis first).
		if i >= 1 {
			want := b.Genesis().Info
			if i >= 2 {
				want = nodes[i-2].Info
			}
			if n.QC.CommitInfo() != want {
				t.Fatalf("round %d: QC commits round %d", n.Round(), n.QC.CommitInfo().Round)
			}
		}
		// Replay the payload on an accumulator of our own.
		for _, tx := range n.Block.Payload() {
			acc.Append(tx)
			txs = append(txs, tx)
		}
		if n.Info.ExecutedStateID != acc.Root() || n.Info.Version != acc.Size() {
			t.Fatalf("round %d: info %s/%d, replay %s/%d", n.Round(),
				n.Info.ExecutedStateID.Short(), n.Info.Version, acc.Root().Short(), acc.Size())
		}
		if i < 10 && n.Info.ExecutedStateID != merkleRoot(txs) {
			t.Fatalf("round %d: state id is not the RFC 6962 root", n.Round())
		}
		if got := n.Accumulator(); got.Root() != acc.Root() || got.Size() != acc.Size() {
			t.Fatalf("round %d: Node.Accumulator differs from the replay", n.Round())
		}
		parent = n
	}
	if len(txs) != 150 {
		t.Fatalf("%d transactions, want 150", len(txs))
	}
	// Key/value transactions carry distinct keys.
	keys := map[string]bool{}
	for _, tx := range txs {
		k, _, err := chain.DecodeKV(tx)
		if err != nil || keys[string(k)] {
			t.Fatalf("transaction %x: key %x, %v", tx, k, err)
		}
		keys[string(k)] = true
	}
}

func TestForksAndGaps(t *testing.T) {
	v := chaintest.NewValidators(2, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 2, Seed: 2})
	main := b.Extend(b.Genesis(), 5)
	fork := b.Child(main[1], main[2].Round()) // same round as main[2], other block
	gap := b.Child(main[4], main[4].Round()+3)
	afterGap := b.Extend(gap, 3)
	if fork.Block.ID == main[2].Block.ID {
		t.Fatal("fork block equals the main-chain block")
	}
	if fork.Block.ParentID() != main[1].Block.ID {
		t.Fatal("fork has the wrong parent")
	}
	for _, n := range append([]*chaintest.Node{fork, gap}, afterGap...) {
		if err := v.Verifier.VerifyBlock(n.Block); err != nil {
			t.Fatalf("round %d: VerifyBlock: %v", n.Round(), err)
		}
		if err := v.Verifier.VerifyQC(&n.QC); err != nil {
			t.Fatalf("round %d: VerifyQC: %v", n.Round(), err)
		}
	}
	// The fork executes on its own branch: same version as main[2] when the
	// payload sizes match, but another state.
	if fork.Info.Version != main[2].Info.Version || fork.Info.ExecutedStateID == main[2].Info.ExecutedStateID {
		t.Fatalf("fork info %+v, main %+v", fork.Info, main[2].Info)
	}
	// A gap commits nothing until three consecutive rounds follow it.
	if gap.QC.CommitsBlock() || afterGap[0].QC.CommitsBlock() {
		t.Fatal("QC across a round gap commits a block")
	}
	if afterGap[1].QC.CommitInfo() != gap.Info {
		t.Fatalf("QC after the gap commits round %d, want %d", afterGap[1].QC.CommitInfo().Round, gap.Round())
	}
}

func TestQuorumIsMinimal(t *testing.T) {
	for _, powers := range [][]uint64{
		{1},
		{1, 1, 1, 1},
		{1, 1, 1, 1, 1, 1, 1},
		{5, 1, 1, 1, 1, 1},
		{20, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
		{3, 3, 3, 1},
	} {
		v := chaintest.NewValidatorsWithPower(1, powers)
		q := v.Quorum()
		power := func(idx []int) uint64 {
			var p uint64
			for _, i := range idx {
				p += v.Set.Power(v.Signers[i].ID())
			}
			return p
		}
		if !v.Set.HasQuorum(power(q)) {
			t.Fatalf("%v: Quorum() %v lacks a quorum", powers, q)
		}
		if v.Set.HasQuorum(power(q[:len(q)-1])) {
			t.Fatalf("%v: Quorum() %v is not minimal", powers, q)
		}
		for k := 1; k < len(q); k++ {
			if q[k] <= q[k-1] {
				t.Fatalf("%v: Quorum() %v not in increasing order", powers, q)
			}
		}
		// A certificate signed by exactly Quorum() verifies.
		tc := v.SignTC(1, q)
		if err := v.Verifier.VerifyTC(&tc); err != nil {
			t.Fatalf("%v: %v", powers, err)
		}
	}
	// With equal powers, a quorum is n - floor((n-1)/3) validators.
	for _, n := range []int{1, 4, 7, 10, 100} {
		if got, want := len(chaintest.NewValidators(1, n).Quorum()), n-(n-1)/3; got != want {
			t.Errorf("n=%d: quorum of %d, want %d", n, got, want)
		}
	}
}

func TestCorruptLeavesOriginal(t *testing.T) {
	v := chaintest.NewValidators(1, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 2, TxSize: 16})
	n := b.Extend(b.Genesis(), 3)[2]
	before := encode(t, n.Block)
	c := chaintest.Corrupt(n.Block, func(blk *chain.Block) {
		blk.Data.Payload[0][0] ^= 1
		blk.Signature[0] ^= 1
		blk.Data.QuorumCert.SignedLedgerInfo.Signatures[0].Sig[0] ^= 1
		blk.Data.QuorumCert.VoteData.Proposed.Round++
		blk.ID[0] ^= 1
	})
	if !bytes.Equal(encode(t, n.Block), before) {
		t.Fatal("Corrupt changed the original block")
	}
	if bytes.Equal(encode(t, c), before) {
		t.Fatal("Corrupt did not change the copy")
	}
	if err := v.Verifier.VerifyBlock(n.Block); err != nil {
		t.Fatal(err)
	}

	qcBefore := encode(t, &n.QC)
	qc := chaintest.CloneQC(&n.QC)
	qc.VoteData.Proposed.Version++
	v.ResealQC(qc)
	if !bytes.Equal(encode(t, &n.QC), qcBefore) {
		t.Fatal("ResealQC of a clone changed the original QC")
	}
	if qc.SignedLedgerInfo.LedgerInfo.ConsensusDataHash != qc.VoteData.Hash() {
		t.Fatal("ResealQC did not renew the consensus data hash")
	}
	if err := v.Verifier.VerifyQC(qc); err != nil {
		t.Fatalf("resealed QC: %v", err)
	}

	// Reseal renews id and signature so that only the changed rule fails.
	r := v.Reseal(chaintest.Corrupt(n.Block, func(blk *chain.Block) { blk.Data.TimestampUsecs++ }))
	if err := v.Verifier.VerifyBlock(r); err != nil {
		t.Fatalf("resealed block: %v", err)
	}
}
