package node

import (
	"net/http"

	"github.com/libp2p/go-libp2p/core/peer"
)

// AdminHandler returns the admin API over g, which drives the node's
// connection gater so that a test runner can partition the node and heal it:
//
//	POST /admin/block?peer=ID     refuse connections with the peer, close existing ones
//	POST /admin/unblock?peer=ID   accept the peer again (reconnect if it is a bootstrap peer)
//	GET  /admin/blocked           the blocked peer ids as a JSON array
//
// Serve it on a loopback listener of its own, never next to the public API:
// anyone who reaches it can cut the node off. It is safe for concurrent use.
func AdminHandler(g *Gater) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /admin/block", func(w http.ResponseWriter, r *http.Request) {
		p, ok := peerParam(w, r)
		if !ok {
			return
		}
		g.Block(p)
		writeJSON(w, http.StatusOK, map[string]string{"blocked": p.String()})
	})
	mux.HandleFunc("POST /admin/unblock", func(w http.ResponseWriter, r *http.Request) {
		p, ok := peerParam(w, r)
		if !ok {
			return
		}
		g.Unblock(p)
		writeJSON(w, http.StatusOK, map[string]string{"unblocked": p.String()})
	})
	mux.HandleFunc("GET /admin/blocked", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, blockedPeers(g))
	})
	return mux
}

// peerParam parses the peer query parameter, answering 400 if it is not a
// peer id.
func peerParam(w http.ResponseWriter, r *http.Request) (peer.ID, bool) {
	p, err := peer.Decode(r.URL.Query().Get("peer"))
	if err != nil {
		httpError(w, http.StatusBadRequest, "peer must be a peer id")
		return "", false
	}
	return p, true
}

// blockedPeers lists the peers g blocks, sorted.
func blockedPeers(g *Gater) []string {
	var out []string
	for _, p := range g.BlockedPeers() {
		out = append(out, p.String())
	}
	return out
}
