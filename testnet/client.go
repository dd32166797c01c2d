package testnet

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/node"
)

// requestTimeout bounds one HTTP request to a node.
const requestTimeout = 5 * time.Second

// FetchStatus returns the node's GET /status; api is its base URL
// (http://host:port).
func FetchStatus(ctx context.Context, api string) (node.Status, error) {
	var s node.Status
	err := call(ctx, http.MethodGet, strings.TrimRight(api, "/")+"/status", &s)
	return s, err
}

// FetchBlocks returns up to limit (at most node.MaxBlocksPerPage) committed
// blocks of round from or above, from the node's GET /blocks.
func FetchBlocks(ctx context.Context, api string, from uint64, limit int) ([]node.BlockJSON, error) {
	var bs []node.BlockJSON
	u := fmt.Sprintf("%s/blocks?from_round=%d&limit=%d", strings.TrimRight(api, "/"), from, limit)
	err := call(ctx, http.MethodGet, u, &bs)
	return bs, err
}

// FetchTxProof returns the committed transaction whose tx_hash is h from
// the node's GET /tx/{hash}, with its proof verified against g
// (docs/protocol.md section 11): nothing the node says is trusted.
func FetchTxProof(ctx context.Context, api string, g *chain.Genesis, h chain.Hash) (*ledger.TxProof, error) {
	v, err := chain.NewVerifier(g)
	if err != nil {
		return nil, err
	}
	var pj node.TxProofJSON
	if err := call(ctx, http.MethodGet, strings.TrimRight(api, "/")+"/tx/"+h.String(), &pj); err != nil {
		return nil, err
	}
	got, p, err := pj.Decode()
	if err != nil {
		return nil, fmt.Errorf("testnet: GET /tx/%s: %w", h, err)
	}
	if got != h {
		return nil, fmt.Errorf("testnet: GET /tx/%s answered for transaction %s", h, got)
	}
	if err := ledger.VerifyTxProof(v, h, p); err != nil {
		return nil, fmt.Errorf("testnet: GET /tx/%s: the proof does not verify: %w", h, err)
	}
	return p, nil
}

// FetchStateProof returns the value of key in the committed state of the
// node whose API is at api, or its absence, from GET /state, verified
// against the validator set of g (docs/protocol.md section 12).
func FetchStateProof(ctx context.Context, api string, g *chain.Genesis, key []byte) (*ledger.StateProof, error) {
	v, err := chain.NewVerifier(g)
	if err != nil {
		return nil, err
	}
	var pj node.StateProofJSON
	u := strings.TrimRight(api, "/") + "/state?key=" + hex.EncodeToString(key)
	if err := call(ctx, http.MethodGet, u, &pj); err != nil {
		return nil, err
	}
	p, err := pj.Decode()
	if err != nil {
		return nil, fmt.Errorf("testnet: GET /state: %w", err)
	}
	if !bytes.Equal(p.Key, key) {
		return nil, fmt.Errorf("testnet: GET /state answered for key %x, asked %x", p.Key, key)
	}
	if err := ledger.VerifyStateProof(v, key, p); err != nil {
		return nil, fmt.Errorf("testnet: GET /state: the proof does not verify: %w", err)
	}
	return p, nil
}

// SubmitTx posts tx to the node's POST /tx and returns its tx_hash.
func SubmitTx(ctx context.Context, api string, tx []byte) (chain.Hash, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	u := strings.TrimRight(api, "/") + "/tx"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(tx))
	if err != nil {
		return chain.Hash{}, fmt.Errorf("testnet: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return chain.Hash{}, fmt.Errorf("testnet: POST %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusAccepted {
		return chain.Hash{}, fmt.Errorf("testnet: POST %s: %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	var out struct {
		TxHash string `json:"tx_hash"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return chain.Hash{}, fmt.Errorf("testnet: POST %s: %w", u, err)
	}
	return chain.ParseHash(out.TxHash)
}

// adminCall posts to the node's admin API: op is "block" or "unblock".
func adminCall(ctx context.Context, admin, op, peerID string) error {
	u := fmt.Sprintf("%s/admin/%s?peer=%s", strings.TrimRight(admin, "/"), op, url.QueryEscape(peerID))
	return call(ctx, http.MethodPost, u, nil)
}

// call sends a request without body and decodes a 2xx JSON answer into out
// (if not nil).
func call(ctx context.Context, method, u string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return fmt.Errorf("testnet: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("testnet: %s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("testnet: %s %s: %w", method, u, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("testnet: %s %s: %s: %s", method, u, resp.Status, strings.TrimSpace(string(body)))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("testnet: %s %s: %w", method, u, err)
	}
	return nil
}
