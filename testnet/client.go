package testnet

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

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
