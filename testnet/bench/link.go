package bench

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/quicreuse"
	"github.com/marcopolo/simnet"
	quicgo "github.com/quic-go/quic-go"
	"go.uber.org/fx"
)

// Link is a modelled network link: every host of a run (the serving hosts
// and the syncing node) sits behind a link of BitsPerSecond up and down,
// and every packet between two hosts takes RTT/2 one way. The zero Link
// means real loopback TCP with no model.
type Link struct {
	RTT           time.Duration
	BitsPerSecond int
}

// IsZero reports whether l is no link model.
func (l Link) IsZero() bool { return l == Link{} }

// BytesPerSecond is the link's bandwidth in bytes per second.
func (l Link) BytesPerSecond() float64 { return float64(l.BitsPerSecond) / 8 }

func (l Link) String() string {
	if l.IsZero() {
		return "loopback"
	}
	bw := fmt.Sprintf("%dbit", l.BitsPerSecond)
	switch {
	case l.BitsPerSecond%1_000_000_000 == 0:
		bw = fmt.Sprintf("%dGbit", l.BitsPerSecond/1_000_000_000)
	case l.BitsPerSecond%1_000_000 == 0:
		bw = fmt.Sprintf("%dMbit", l.BitsPerSecond/1_000_000)
	case l.BitsPerSecond%1_000 == 0:
		bw = fmt.Sprintf("%dkbit", l.BitsPerSecond/1_000)
	}
	return l.RTT.String() + "/" + bw
}

// ErrLink is the reason of every error of [ParseLink].
var ErrLink = errors.New("bench: invalid link")

// ParseLink parses "RTT/BANDWIDTH", e.g. "150ms/100Mbit": a round-trip
// time as time.ParseDuration reads it, and a bandwidth in bit, kbit, Mbit
// or Gbit per second (decimal units). "" and "none" are the zero Link.
func ParseLink(s string) (Link, error) {
	if s == "" || s == "none" {
		return Link{}, nil
	}
	rtt, bw, ok := strings.Cut(s, "/")
	if !ok {
		return Link{}, fmt.Errorf("%w: %q, want RTT/BANDWIDTH such as 150ms/100Mbit", ErrLink, s)
	}
	d, err := time.ParseDuration(rtt)
	if err != nil || d < 0 || d > 10*time.Second {
		return Link{}, fmt.Errorf("%w: round-trip time %q, want 0 to 10s", ErrLink, rtt)
	}
	mult := 1
	num := bw
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"Gbit", 1_000_000_000}, {"Mbit", 1_000_000}, {"kbit", 1_000}, {"bit", 1}} {
		if strings.HasSuffix(bw, u.suffix) {
			num, mult = strings.TrimSuffix(bw, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(num, 64)
	bits := n * float64(mult)
	if err != nil || bits < 100_000 || bits > 100_000_000_000 {
		return Link{}, fmt.Errorf("%w: bandwidth %q, want 100kbit to 100Gbit", ErrLink, bw)
	}
	return Link{RTT: d, BitsPerSecond: int(bits)}, nil
}

// linkNet is the simulated network of a run with a link model: QUIC over
// simnet's packet links, in real time.
type linkNet struct {
	link Link
	net  *simnet.Simnet
	next atomic.Int64 // the index of the next host's address

	mu     sync.Mutex
	closed bool
}

func newLinkNet(l Link) *linkNet {
	n := &simnet.Simnet{
		LatencyFunc: simnet.StaticLatency(l.RTT / 2),
		Logger:      slog.New(slog.DiscardHandler),
	}
	n.Start()
	return &linkNet{link: l, net: n}
}

// Close stops the simulated network; hosts on it must be closed first.
func (n *linkNet) Close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.closed {
		n.closed = true
		n.net.Close()
	}
}

// sourceIP tells quicreuse the local address of a simulated endpoint.
type sourceIP struct{ ip atomic.Pointer[net.IP] }

func (s *sourceIP) PreferredSourceIPForDestination(*net.UDPAddr) (net.IP, error) {
	return *s.ip.Load(), nil
}

// newHost returns a host with key listening on QUIC behind its own link.
func (n *linkNet) newHost(key crypto.PrivKey) (host.Host, error) {
	ip := simnet.IntToPublicIPv4(int(n.next.Add(1)))
	settings := simnet.NodeBiDiLinkSettings{
		Downlink: simnet.LinkSettings{BitsPerSecond: n.link.BitsPerSecond, MTU: linkBurst},
		Uplink:   simnet.LinkSettings{BitsPerSecond: n.link.BitsPerSecond, MTU: linkBurst},
	}
	src := &sourceIP{}
	opts := []quicreuse.Option{
		quicreuse.OverrideSourceIPSelector(func() (quicreuse.SourceIPSelector, error) { return src, nil }),
		quicreuse.OverrideListenUDP(func(_ string, addr *net.UDPAddr) (net.PacketConn, error) {
			src.ip.Store(&addr.IP)
			return n.net.NewEndpoint(addr, settings), nil
		}),
	}
	h, err := libp2p.New(
		libp2p.Identity(key),
		libp2p.ListenAddrStrings(fmt.Sprintf("/ip4/%s/udp/8000/quic-v1", ip)),
		libp2p.Transport(quic.NewTransport),
		libp2p.QUICReuse(func(l fx.Lifecycle, reset quicgo.StatelessResetKey, token quicgo.TokenGeneratorKey, opts ...quicreuse.Option) (*quicreuse.ConnManager, error) {
			cm, err := quicreuse.NewConnManager(reset, token, opts...)
			if err != nil {
				return nil, err
			}
			l.Append(fx.StopHook(cm.Close)) // a supplied manager is not closed by the host
			return cm, nil
		}, opts...),
		libp2p.DisableIdentifyAddressDiscovery(),
		libp2p.DisableRelay(),
		libp2p.UserAgent("p2pnode-bench"),
	)
	if err != nil {
		return nil, fmt.Errorf("bench: libp2p host on the link model: %w", err)
	}
	return h, nil
}

// linkBurst is the MTU given to simnet's links, which is also the burst of
// their token buckets: QUIC's packets stay at most about 1.5 kB, but a
// bucket of one packet loses the capacity of every timer that fires late
// in real time, so that a 100 Mbit/s link carried about a quarter of it.
const linkBurst = 64 << 10
