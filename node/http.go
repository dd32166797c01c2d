package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/p2pnode/p2pnode/chain"
)

// MaxBlocksPerPage caps the limit of GET /blocks.
const MaxBlocksPerPage = 1000

// apiServer is the node's HTTP API:
//
//	GET  /status                         the node's Status as JSON
//	GET  /health                         the node's Health: 200 if ready, 503 if not
//	GET  /metrics                        Prometheus metrics
//	GET  /blocks?from_round=R&limit=N    committed blocks from round R, N ≤ 1000
//	POST /tx                             body: one raw transaction; 202 if accepted
//	GET  /tx/{hash}                      a committed transaction with its proof
//	GET  /state?key=HEX                  a key's committed value, or its absence, with the proof
type apiServer struct {
	srv *http.Server
	log *slog.Logger
}

func newAPIServer(h http.Handler, log *slog.Logger) *apiServer {
	return &apiServer{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
		log: log,
	}
}

// serve serves on ln until shutdown.
func (a *apiServer) serve(ln net.Listener) {
	a.log.Info("http api listening", "addr", ln.Addr().String())
	if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		a.log.Error("http api stopped", "err", err)
	}
}

// shutdown stops accepting requests and waits for those in progress until
// ctx ends.
func (a *apiServer) shutdown(ctx context.Context) {
	if err := a.srv.Shutdown(ctx); err != nil {
		_ = a.srv.Close()
	}
}

// newAPIHandler returns the API's routes over n; transactions posted are
// gossiped through txs.
func newAPIHandler(n *Node, txs *txBroadcaster, log *slog.Logger) http.Handler {
	h := &apiHandler{n: n, txs: txs, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", h.status)
	mux.HandleFunc("GET /health", h.health)
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("GET /blocks", h.blocks)
	mux.HandleFunc("POST /tx", h.tx)
	mux.HandleFunc("GET /tx/{hash}", h.txProof)
	mux.HandleFunc("GET /state", h.stateProof)
	return mux
}

type apiHandler struct {
	n   *Node
	txs *txBroadcaster
	log *slog.Logger
}

func (h *apiHandler) status(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, h.n.Status())
}

// BlockJSON is a committed block as GET /blocks lists it.
type BlockJSON struct {
	Round          uint64 `json:"round"`
	ID             string `json:"id"`
	ParentID       string `json:"parent_id"`
	Version        uint64 `json:"version"`
	StateID        string `json:"state_id"`
	TimestampUsecs uint64 `json:"timestamp_usecs"`
	// Txs is the number of transactions in the block.
	Txs int `json:"txs"`
}

func (h *apiHandler) blocks(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, err := strconv.ParseUint(q.Get("from_round"), 10, 64)
	if q.Get("from_round") == "" {
		from, err = 0, nil
	}
	if err != nil {
		httpError(w, http.StatusBadRequest, "from_round must be an unsigned integer")
		return
	}
	limit := 100
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > MaxBlocksPerPage {
			httpError(w, http.StatusBadRequest, fmt.Sprintf("limit must be 1 to %d", MaxBlocksPerPage))
			return
		}
	}
	cbs, err := h.n.opened.Blocks.Ledger().BlocksFrom(from, limit)
	if err != nil {
		h.log.Error("list committed blocks", "err", err)
		httpError(w, http.StatusInternalServerError, "cannot read committed blocks")
		return
	}
	out := make([]BlockJSON, 0, len(cbs))
	for _, cb := range cbs {
		out = append(out, BlockJSON{
			Round:          cb.Info.Round,
			ID:             cb.Info.ID.String(),
			ParentID:       cb.Block.ParentID().String(),
			Version:        cb.Info.Version,
			StateID:        cb.Info.ExecutedStateID.String(),
			TimestampUsecs: cb.Info.TimestampUsecs,
			Txs:            len(cb.Block.Payload()),
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// tx accepts one raw transaction (docs/protocol.md section 10): 413 for a
// body over chain.MaxTxSize bytes, however it is sent, 400 for an empty or
// unreadable body; tx_hash in the 202 answer is the transaction's RFC 6962
// leaf hash, SHA-256(0x00 || tx), in lowercase hex.
func (h *apiHandler) tx(w http.ResponseWriter, r *http.Request) {
	tx, err := io.ReadAll(http.MaxBytesReader(w, r.Body, chain.MaxTxSize))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("transaction over %d bytes", chain.MaxTxSize))
		return
	case err != nil:
		httpError(w, http.StatusBadRequest, "cannot read the request body")
		return
	case len(tx) == 0:
		httpError(w, http.StatusBadRequest, "empty transaction")
		return
	}
	switch err := h.n.mempool.Add(tx); {
	case errors.Is(err, ErrTxSize) && len(tx) > chain.MaxTxSize:
		httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("transaction over %d bytes", chain.MaxTxSize))
	case errors.Is(err, ErrTxSize):
		httpError(w, http.StatusBadRequest, fmt.Sprintf("transaction must be 1 to %d bytes", chain.MaxTxSize))
	case errors.Is(err, ErrDuplicateTx):
		httpError(w, http.StatusConflict, "transaction already pending or committed")
	case errors.Is(err, ErrMempoolFull):
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable, "mempool full")
	case err != nil:
		httpError(w, http.StatusInternalServerError, err.Error())
	default:
		h.txs.queue(tx)
		writeJSON(w, http.StatusAccepted, map[string]string{"tx_hash": chain.TxLeafHash(tx).String()})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func httpError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
