package node_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/node"
)

// newIdleNode is a node with a chain of n blocks that is built but never
// run: its HTTP handler answers from its store.
func newIdleNode(t *testing.T, n int) (*node.Node, []*chaintest.Node) {
	t.Helper()
	v := chaintest.NewValidators(61, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 2, TxSize: 30})
	blocks := b.Extend(b.Genesis(), n)
	cfg := testConfig(t, "api", v.Genesis, chaintest.Key(fullNodeSeed, 0))
	preload(t, cfg.Home, v.Genesis, blocks)
	nd, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nd.Close() })
	return nd, blocks
}

func TestHTTPStatus(t *testing.T) {
	n, blocks := newIdleNode(t, 6)
	rec := httptest.NewRecorder()
	n.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/status", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	committed := blocks[3] // the QC of block 6 commits block 4
	want := map[string]any{
		"chain_id":           chaintest.ChainID,
		"peer_id":            n.ID().String(),
		"role":               "fullnode",
		"highest_qc_round":   float64(6),
		"committed_round":    float64(4),
		"committed_version":  float64(8),
		"committed_block_id": committed.Block.ID.String(),
		"root_round":         float64(4),
		"peers":              float64(0),
		"syncing":            false,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %v, want %v", k, got[k], w)
		}
	}
	if _, ok := got["listen_addrs"]; !ok {
		t.Error("no listen_addrs")
	}
}

func TestHTTPBlocks(t *testing.T) {
	n, blocks := newIdleNode(t, 8) // committed: rounds 1 to 6
	tests := []struct {
		name       string
		query      string
		wantCode   int
		wantRounds []uint64
	}{
		{"from 2, limit 3", "from_round=2&limit=3", http.StatusOK, []uint64{2, 3, 4}},
		{"default", "", http.StatusOK, []uint64{1, 2, 3, 4, 5, 6}},
		{"past the end", "from_round=7", http.StatusOK, nil},
		{"limit too high", "limit=1001", http.StatusBadRequest, nil},
		{"limit zero", "limit=0", http.StatusBadRequest, nil},
		{"bad round", "from_round=-1", http.StatusBadRequest, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			n.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/blocks?"+tt.query, nil))
			if rec.Code != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantCode, rec.Body)
			}
			if tt.wantCode != http.StatusOK {
				return
			}
			var got []node.BlockJSON
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.wantRounds) {
				t.Fatalf("%d blocks, want rounds %v", len(got), tt.wantRounds)
			}
			for i, b := range got {
				if b.Round != tt.wantRounds[i] {
					t.Fatalf("block %d has round %d, want %d", i, b.Round, tt.wantRounds[i])
				}
				if b.Round > 0 {
					cb := blocks[b.Round-1]
					if b.ID != cb.Block.ID.String() || b.ParentID != cb.Block.ParentID().String() || b.Txs != 2 || b.Version != cb.Info.Version {
						t.Fatalf("block %+v, want id %s version %d", b, cb.Block.ID, cb.Info.Version)
					}
				}
			}
		})
	}
}

// TestHTTPPostTx pins the rules of docs/protocol.md section 10: 413 for
// every over-size body, whether its length is declared or not, 400 for an
// empty one, and tx_hash = SHA-256(0x00 || tx) in hex.
func TestHTTPPostTx(t *testing.T) {
	n, _ := newIdleNode(t, 1)
	unsized := func(b []byte) io.Reader { return io.MultiReader(bytes.NewReader(b)) } // no Content-Length
	tests := []struct {
		name     string
		body     io.Reader
		tx       []byte // the transaction when accepted
		wantCode int
		wantHash string
	}{
		{"accepted", bytes.NewReader([]byte("hello")), []byte("hello"), http.StatusAccepted,
			"8a2a5c9b768827de5a9552c38a044c66959c68f6d2f21b5260af54d2f87db827"},
		{"duplicate", bytes.NewReader([]byte("hello")), nil, http.StatusConflict, ""},
		{"empty", nil, nil, http.StatusBadRequest, ""},
		{"empty unsized", unsized(nil), nil, http.StatusBadRequest, ""},
		{"largest", bytes.NewReader(bytes.Repeat([]byte{1}, chain.MaxTxSize)), bytes.Repeat([]byte{1}, chain.MaxTxSize), http.StatusAccepted, ""},
		{"largest unsized", unsized(bytes.Repeat([]byte{3}, chain.MaxTxSize)), bytes.Repeat([]byte{3}, chain.MaxTxSize), http.StatusAccepted, ""},
		{"too large", bytes.NewReader(bytes.Repeat([]byte{2}, chain.MaxTxSize+1)), nil, http.StatusRequestEntityTooLarge, ""},
		{"too large unsized", unsized(bytes.Repeat([]byte{2}, chain.MaxTxSize+1)), nil, http.StatusRequestEntityTooLarge, ""},
		{"far too large", bytes.NewReader(make([]byte, 1<<20)), nil, http.StatusRequestEntityTooLarge, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			n.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/tx", tt.body))
			if rec.Code != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantCode, rec.Body)
			}
			var body map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q is not JSON: %v", rec.Body, err)
			}
			if tt.wantCode != http.StatusAccepted {
				if body["error"] == "" {
					t.Fatalf("no error message in %v", body)
				}
				return
			}
			leaf := sha256.Sum256(append([]byte{0x00}, tt.tx...))
			if got := body["tx_hash"]; got != hex.EncodeToString(leaf[:]) {
				t.Fatalf("tx_hash %q, want SHA-256(0x00 || tx) = %x", got, leaf)
			}
			if tt.wantHash != "" && body["tx_hash"] != tt.wantHash {
				t.Fatalf("tx_hash %q, want the documented %s", body["tx_hash"], tt.wantHash)
			}
		})
	}
	if got := n.Mempool().Len(); got != 3 {
		t.Fatalf("mempool holds %d txs, want 3", got)
	}
	rec := httptest.NewRecorder()
	n.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/tx", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET /tx: status %d, want 405", rec.Code)
	}
}

func TestHTTPMetrics(t *testing.T) {
	n, _ := newIdleNode(t, 4)
	srv := httptest.NewServer(n.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	text, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		"p2pnode_sync_runs_total 0",
		"p2pnode_sync_failures_total 0",
		"p2pnode_sync_blocks_fetched_total 0",
		"p2pnode_state_sync_txs_total 0",
		"p2pnode_committed_round 2",
		"p2pnode_mempool_txs 0",
		"p2pnode_peers 0",
		"go_goroutines",
	} {
		if !strings.Contains(string(text), name) {
			t.Errorf("metrics lack %q", name)
		}
	}
}

// TestHTTPTxProof: GET /tx/{hash} answers each committed transaction with
// a proof that verifies as docs/protocol.md section 11 says, and 404 for
// the transactions of blocks not committed yet.
func TestHTTPTxProof(t *testing.T) {
	n, blocks := newIdleNode(t, 8) // committed: rounds 1 to 6, versions 0 to 11
	v := chaintest.NewValidators(61, 4).Verifier
	for i, cb := range blocks {
		for j, tx := range cb.Block.Payload() {
			h := chain.TxLeafHash(tx)
			rec := httptest.NewRecorder()
			n.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/tx/"+h.String(), nil))
			if i >= 6 {
				if rec.Code != http.StatusNotFound {
					t.Fatalf("block %d tx %d (not committed): status %d, want 404", i+1, j, rec.Code)
				}
				continue
			}
			if rec.Code != http.StatusOK {
				t.Fatalf("block %d tx %d: status %d: %s", i+1, j, rec.Code, rec.Body)
			}
			var pj node.TxProofJSON
			if err := json.Unmarshal(rec.Body.Bytes(), &pj); err != nil {
				t.Fatal(err)
			}
			if want := cb.Info.Version - uint64(len(cb.Block.Payload())) + uint64(j); pj.Version != want || pj.LedgerVersion != 12 || pj.Tx != hex.EncodeToString(tx) {
				t.Fatalf("block %d tx %d: version %d of ledger %d, want %d of 12", i+1, j, pj.Version, pj.LedgerVersion, want)
			}
			hash, p, err := pj.Decode()
			if err != nil || hash != h {
				t.Fatalf("Decode: %v (hash %s, want %s)", err, hash.Short(), h.Short())
			}
			if err := ledger.VerifyTxProof(v, h, p); err != nil {
				t.Fatalf("block %d tx %d: %v", i+1, j, err)
			}
			// As an independent client: the RFC 6962 audit path to the
			// signed executed state id.
			path := make([][]byte, len(pj.Proof))
			for k, s := range pj.Proof {
				path[k], _ = hex.DecodeString(s)
			}
			info := p.LedgerInfo.LedgerInfo.CommitInfo
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, pj.Version, info.Version, h[:], path, info.ExecutedStateID[:]); err != nil {
				t.Fatalf("block %d tx %d: RFC 6962 verifier: %v", i+1, j, err)
			}
		}
	}
	for _, tt := range []struct {
		path string
		code int
	}{
		{"/tx/" + chain.TxLeafHash([]byte("never sent")).String(), http.StatusNotFound},
		{"/tx/abc", http.StatusBadRequest},
		{"/tx/" + strings.Repeat("zz", 32), http.StatusBadRequest},
	} {
		rec := httptest.NewRecorder()
		n.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
		if rec.Code != tt.code {
			t.Errorf("GET %s = %d, want %d", tt.path, rec.Code, tt.code)
		}
	}
}
