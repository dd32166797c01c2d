package node

import (
	"fmt"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/prometheus/client_golang/prometheus"
)

// Resource manager services of the node's stream protocols.
const (
	// syncService serves blocks and chunks.
	syncService = "p2pnode.sync"
	// voteService receives votes.
	voteService = "p2pnode.vote"
	// validatorTag protects validators' connections from trimming.
	validatorTag = "p2pnode-validator"
)

// newHost builds the libp2p host: TCP and QUIC, Noise and TLS, yamux, a
// resource manager with explicit limits, a connection manager that never
// trims validators and the gater.
func newHost(cfg *Config, gater *Gater, reg prometheus.Registerer) (host.Host, error) {
	rm, err := newResourceManager(cfg.Limits, reg)
	if err != nil {
		return nil, err
	}
	cm, err := connmgr.NewConnManager(cfg.Limits.ConnsLow, cfg.Limits.ConnsHigh)
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("node: connection manager: %w", err)
	}
	for _, v := range cfg.Genesis.Validators.IDs() {
		cm.Protect(v, validatorTag)
	}
	h, err := libp2p.New(
		libp2p.Identity(cfg.Key),
		libp2p.ListenAddrs(cfg.ListenAddrs...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.ConnectionGater(gater),
		libp2p.PrometheusRegisterer(reg),
		libp2p.UserAgent("p2pnode"),
		libp2p.DisableRelay(),
	)
	if err != nil {
		cm.Close()
		rm.Close()
		return nil, fmt.Errorf("node: libp2p host: %w", err)
	}
	gater.attach(h.Network())
	return h, nil
}

// newResourceManager returns a resource manager scaled to limits, with
// the node's services bounded explicitly, that reports its scopes' use and
// its blocked resources as libp2p_rcmgr_* metrics in reg.
func newResourceManager(l Limits, reg prometheus.Registerer) (network.ResourceManager, error) {
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)
	scaling.AddServiceLimit(syncService,
		rcmgr.BaseLimit{StreamsInbound: 256, StreamsOutbound: 256, Streams: 512, Memory: 128 << 20},
		rcmgr.BaseLimitIncrease{})
	scaling.AddServicePeerLimit(syncService,
		rcmgr.BaseLimit{StreamsInbound: 16, StreamsOutbound: 32, Streams: 48, Memory: 40 << 20},
		rcmgr.BaseLimitIncrease{})
	scaling.AddServiceLimit(voteService,
		rcmgr.BaseLimit{StreamsInbound: 512, StreamsOutbound: 512, Streams: 1024, Memory: 16 << 20},
		rcmgr.BaseLimitIncrease{})
	scaling.AddServicePeerLimit(voteService,
		rcmgr.BaseLimit{StreamsInbound: 8, StreamsOutbound: 8, Streams: 16, Memory: 2 << 20},
		rcmgr.BaseLimitIncrease{})
	limits := scaling.Scale(l.MaxMemory, l.MaxFDs)
	str, err := rcmgr.NewStatsTraceReporter()
	if err != nil {
		return nil, fmt.Errorf("node: resource manager metrics: %w", err)
	}
	rcmgr.MustRegisterWith(reg)
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits), rcmgr.WithTraceReporter(str))
	if err != nil {
		return nil, fmt.Errorf("node: resource manager: %w", err)
	}
	return rm, nil
}

// connected reports whether h has a connection to p.
func connected(h host.Host, p peer.ID) bool {
	return h.Network().Connectedness(p) == network.Connected
}
