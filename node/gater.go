package node

import (
	"slices"
	"sync"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Gater is the host's connection gater: it refuses every connection to or
// from a blocked peer. Tests and the testnet use it to partition nodes.
// It is safe for concurrent use.
type Gater struct {
	mu      sync.Mutex
	blocked map[peer.ID]struct{}
	net     network.Network // set once the host exists
	onHeal  func(peer.ID)   // set once the node runs
}

var _ connmgr.ConnectionGater = (*Gater)(nil)

func newGater() *Gater { return &Gater{blocked: make(map[peer.ID]struct{})} }

// Block refuses connections with p from now on and closes the existing
// ones.
func (g *Gater) Block(p peer.ID) {
	g.mu.Lock()
	g.blocked[p] = struct{}{}
	net := g.net
	g.mu.Unlock()
	if net != nil {
		_ = net.ClosePeer(p) // best effort: a racing dial is refused by the gater
	}
}

// Unblock accepts connections with p again; if p is a bootstrap peer the
// node reconnects to it at once.
func (g *Gater) Unblock(p peer.ID) {
	g.mu.Lock()
	delete(g.blocked, p)
	heal := g.onHeal
	g.mu.Unlock()
	if heal != nil {
		heal(p)
	}
}

// BlockedPeers returns the blocked peers, sorted.
func (g *Gater) BlockedPeers() []peer.ID {
	g.mu.Lock()
	out := make([]peer.ID, 0, len(g.blocked))
	for p := range g.blocked {
		out = append(out, p)
	}
	g.mu.Unlock()
	slices.Sort(out)
	return out
}

// Blocked reports whether p is blocked.
func (g *Gater) Blocked(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.blocked[p]
	return ok
}

func (g *Gater) attach(net network.Network) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.net = net
}

func (g *Gater) setOnHeal(f func(peer.ID)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.onHeal = f
}

// InterceptPeerDial refuses to dial a blocked peer.
func (g *Gater) InterceptPeerDial(p peer.ID) bool { return !g.Blocked(p) }

// InterceptAddrDial refuses to dial a blocked peer.
func (g *Gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return !g.Blocked(p) }

// InterceptAccept accepts every inbound connection; the peer is not known
// before the security handshake.
func (g *Gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }

// InterceptSecured refuses a connection with a blocked peer.
func (g *Gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return !g.Blocked(p)
}

// InterceptUpgraded refuses a connection with a blocked peer.
func (g *Gater) InterceptUpgraded(c network.Conn) (bool, control.DisconnectReason) {
	return !g.Blocked(c.RemotePeer()), 0
}
