package node_test

import (
	"encoding/json"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/node"
)

// seedLedger returns a ledger in memory that committed 4 of 6 blocks of
// 3 key/value transactions (its state tree settled), and the blocks: the
// seeds of the proof fuzz targets (a node per fuzz worker would cost more
// than the fuzzing).
func seedLedger(f *testing.F, vals *chaintest.Validators) (*ledger.Ledger, []*chaintest.Node) {
	b := chaintest.NewBuilder(vals, chaintest.BuilderConfig{TxsPerBlock: 3, TxSize: 30})
	blocks := b.Extend(b.Genesis(), 6)
	l, err := ledger.New(ledger.NewMemStorage(), vals.Genesis)
	if err != nil {
		f.Fatal(err)
	}
	if err := l.ExecuteCertifiedChain(chaintest.Blocks(blocks)); err != nil {
		f.Fatal(err)
	}
	if err := l.Commit(chaintest.Blocks(blocks[:4]), blocks[5].QC.LedgerInfo()); err != nil {
		f.Fatal(err)
	}
	if err := l.Settle(f.Context()); err != nil {
		f.Fatal(err)
	}
	return l, blocks
}

// FuzzTxProofJSON: whatever a node answers, a client decoding and
// verifying it errs or accepts a proof that verifies; it never panics, and
// what it accepts is the transaction asked for. The seeds are kilobytes:
// fuzz with -fuzzminimizetime=1s, or minimising each new input takes a
// minute.
func FuzzTxProofJSON(f *testing.F) {
	vals := chaintest.NewValidators(61, 4)
	v := vals.Verifier
	// Seeds: proofs of a ledger that committed a few blocks, built in
	// memory (a node per fuzz worker would cost more than the fuzzing).
	l, blocks := seedLedger(f, vals)
	for _, cb := range blocks[:3] {
		h := chain.TxLeafHash(cb.Block.Payload()[0])
		p, ok, err := l.TxProof(h)
		if err != nil || !ok {
			f.Fatal(ok, err)
		}
		pj, err := node.NewTxProofJSON(h, p)
		if err != nil {
			f.Fatal(err)
		}
		body, err := json.Marshal(pj)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	f.Add([]byte(`{"tx_hash":"00","proof":["zz"]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > node.MaxTxProofJSONSize {
			return
		}
		var pj node.TxProofJSON
		if json.Unmarshal(body, &pj) != nil {
			return
		}
		h, p, err := pj.Decode()
		if err != nil {
			return
		}
		if ledger.VerifyTxProof(v, h, p) == nil && chain.TxLeafHash(p.Tx) != h {
			t.Fatalf("accepted a proof of another transaction")
		}
	})
}
