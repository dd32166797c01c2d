package node_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
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

func TestHTTPPostTx(t *testing.T) {
	n, _ := newIdleNode(t, 1)
	tests := []struct {
		name     string
		body     []byte
		wantCode int
	}{
		{"accepted", []byte("hello"), http.StatusAccepted},
		{"duplicate", []byte("hello"), http.StatusConflict},
		{"empty", nil, http.StatusBadRequest},
		{"largest", bytes.Repeat([]byte{1}, chain.MaxTxSize), http.StatusAccepted},
		{"too large", bytes.Repeat([]byte{2}, chain.MaxTxSize+1), http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			n.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/tx", bytes.NewReader(tt.body)))
			if rec.Code != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantCode, rec.Body)
			}
			var body map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q is not JSON: %v", rec.Body, err)
			}
			if tt.wantCode != http.StatusAccepted && body["error"] == "" {
				t.Fatalf("no error message in %v", body)
			}
		})
	}
	if got := n.Mempool().Len(); got != 2 {
		t.Fatalf("mempool holds %d txs, want 2", got)
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
