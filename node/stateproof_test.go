package node_test

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/chain/statetree"
	"github.com/p2pnode/p2pnode/node"
)

// TestHTTPStateProof: GET /state?key= answers the committed value of each
// key written by a committed block, and the absence of the others, with
// proofs that verify as docs/protocol.md section 12 says; 400 for a
// malformed key.
func TestHTTPStateProof(t *testing.T) {
	n, blocks := newIdleNode(t, 8) // committed: rounds 1 to 6
	v := chaintest.NewValidators(61, 4).Verifier
	get := func(query string) (*httptest.ResponseRecorder, *node.StateProofJSON) {
		rec := httptest.NewRecorder()
		n.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/state"+query, nil))
		var pj node.StateProofJSON
		if rec.Code == http.StatusOK {
			if err := json.Unmarshal(rec.Body.Bytes(), &pj); err != nil {
				t.Fatal(err)
			}
		}
		return rec, &pj
	}
	for i, cb := range blocks {
		for _, tx := range cb.Block.Payload() {
			key, value, err := chain.DecodeKV(tx)
			if err != nil {
				t.Fatal(err)
			}
			rec, pj := get("?key=" + hex.EncodeToString(key))
			if rec.Code != http.StatusOK {
				t.Fatalf("block %d key %x: status %d: %s", i+1, key, rec.Code, rec.Body)
			}
			committed := i < 6
			if pj.Present != committed || pj.LedgerVersion != 12 || (committed && pj.Value != hex.EncodeToString(value)) {
				t.Fatalf("block %d key %x: present %v value %s at version %d; want present %v", i+1, key, pj.Present, pj.Value, pj.LedgerVersion, committed)
			}
			p, err := pj.Decode()
			if err != nil {
				t.Fatal(err)
			}
			if err := ledger.VerifyStateProof(v, key, p); err != nil {
				t.Fatalf("block %d key %x: %v", i+1, key, err)
			}
		}
	}
	for _, q := range []string{"", "?key=", "?key=zz", "?key=" + hex.EncodeToString(make([]byte, chain.MaxKeySize+1))} {
		if rec, _ := get(q); rec.Code != http.StatusBadRequest {
			t.Fatalf("GET /state%s: status %d, want 400", q, rec.Code)
		}
	}
}

// FuzzStateProofJSON: whatever a node answers, a client decoding and
// verifying it errs or accepts a proof that verifies against a quorum's
// ledger info; it never panics, and what it accepts is about the key asked
// for. Fuzz with -fuzzminimizetime=1s (the seeds are kilobytes).
func FuzzStateProofJSON(f *testing.F) {
	vals := chaintest.NewValidators(62, 4)
	l, blocks := seedLedger(f, vals)
	key, _, _ := chain.DecodeKV(blocks[1].Block.Payload()[0])
	for _, k := range [][]byte{key, []byte("absent")} {
		p, err := l.StateProof(k)
		if err != nil {
			f.Fatal(err)
		}
		pj, err := node.NewStateProofJSON(p)
		if err != nil {
			f.Fatal(err)
		}
		body, err := json.Marshal(pj)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	f.Add([]byte(`{"key":"00","present":true,"proof":"01"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > node.MaxStateProofJSONSize {
			return
		}
		var pj node.StateProofJSON
		if json.Unmarshal(body, &pj) != nil {
			return
		}
		p, err := pj.Decode()
		if err != nil {
			return
		}
		if ledger.VerifyStateProof(vals.Verifier, p.Key, p) != nil || !p.Present {
			return
		}
		if l := p.Proof.Leaf; l == nil || l.KeyHash != statetree.KeyHash(p.Key) || l.ValueHash != statetree.ValueHash(p.Value) {
			t.Fatalf("accepted a value that the proof's leaf does not hold")
		}
	})
}
