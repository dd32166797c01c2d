package node

import (
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/p2pnode/p2pnode/chain"
)

// peerRounds tracks the best round known from peers: the highest QC round
// of the verified SyncInfos peers gossip (alone or in proposals and
// timeouts). A QC needs a quorum's signatures, so no peer can inflate it.
// It is safe for concurrent use.
type peerRounds struct {
	best  atomic.Uint64
	heard atomic.Bool
}

// note records a verified SyncInfo from a peer.
func (p *peerRounds) note(si *chain.SyncInfo) {
	r := si.HighestQC.Round()
	for {
		cur := p.best.Load()
		if r <= cur || p.best.CompareAndSwap(cur, r) {
			break
		}
	}
	p.heard.Store(true)
}

// Health is the node's readiness, as GET /health returns it.
type Health struct {
	// Ready: the node follows the chain closely enough to serve reads and
	// be counted on (see Config.ReadyRounds).
	Ready bool `json:"ready"`
	// Reason says why the node is not ready; empty when it is.
	Reason string `json:"reason,omitempty"`
	// HighestQCRound is the node's highest QC round; BestPeerRound the
	// highest heard from a peer; Distance how far the first trails the
	// second (0 if not at all); ReadyRounds the most Distance may be.
	HighestQCRound uint64 `json:"highest_qc_round"`
	BestPeerRound  uint64 `json:"best_peer_round"`
	Distance       uint64 `json:"distance"`
	ReadyRounds    uint64 `json:"ready_rounds"`
	Peers          int    `json:"peers"`
	CatchingUp     bool   `json:"catching_up"`
}

// Health returns the node's readiness. The node is ready when
//   - it is the only validator of its chain (it needs nobody), or
//   - it has peers, has heard a SyncInfo from one, and is at most
//     Config.ReadyRounds rounds behind the best QC round heard.
//
// It is safe for concurrent use.
func (n *Node) Health() Health {
	hqc := n.opened.Blocks.HighestQC()
	qc := hqc.Round()
	best := n.peers.best.Load()
	h := Health{
		HighestQCRound: qc,
		BestPeerRound:  best,
		Distance:       max(best, qc) - qc,
		ReadyRounds:    n.cfg.ReadyRounds,
		Peers:          len(n.host.Network().Peers()),
	}
	vs := n.cfg.Genesis.Validators
	lone := vs.Len() == 1 && vs.Contains(n.host.ID())
	h.Ready, h.Reason, h.CatchingUp = readiness(lone, h.Peers, n.peers.heard.Load(), h.Distance, h.ReadyRounds)
	return h
}

// readiness decides Health's Ready, Reason and CatchingUp for a node that
// is the lone validator or not, has peers, has heard a peer's SyncInfo,
// and is distance rounds behind the best peer, at most readyRounds allowed.
func readiness(lone bool, peers int, heard bool, distance, readyRounds uint64) (ready bool, reason string, catchingUp bool) {
	catchingUp = distance > readyRounds
	switch {
	case lone:
		return true, "", false
	case peers == 0:
		return false, "no peers", catchingUp
	case !heard:
		return false, "no sync info from peers yet", catchingUp
	case catchingUp:
		return false, fmt.Sprintf("%d rounds behind the best peer (at most %d)", distance, readyRounds), true
	}
	return true, "", false
}

func (h *apiHandler) health(w http.ResponseWriter, _ *http.Request) {
	s := h.n.Health()
	code := http.StatusOK
	if !s.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, s)
}
