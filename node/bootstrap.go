package node

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
)

// bootstrapper keeps the node connected to its bootstrap peers: one
// goroutine per peer dials it, waits while connected, and dials again with
// exponential backoff (jittered, between min and max) when the connection
// drops. Healing a partition (Gater.Unblock) skips the wait.
type bootstrapper struct {
	h        host.Host
	peers    []peer.AddrInfo
	min, max time.Duration
	log      *slog.Logger

	mu    sync.Mutex
	kicks map[peer.ID]chan struct{}
}

func newBootstrapper(h host.Host, peers []peer.AddrInfo, minDelay, maxDelay time.Duration, log *slog.Logger) *bootstrapper {
	b := &bootstrapper{h: h, min: minDelay, max: maxDelay, log: log, kicks: make(map[peer.ID]chan struct{})}
	for _, ai := range peers {
		if ai.ID == h.ID() {
			continue
		}
		b.peers = append(b.peers, ai)
		b.kicks[ai.ID] = make(chan struct{}, 1)
		h.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.PermanentAddrTTL)
	}
	return b
}

// kick makes p's goroutine dial at once if it is waiting.
func (b *bootstrapper) kick(p peer.ID) {
	b.mu.Lock()
	ch := b.kicks[p]
	b.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}

// run keeps every bootstrap peer connected until ctx ends.
func (b *bootstrapper) run(ctx context.Context) {
	sub, err := b.h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		b.log.Error("subscribe to connectedness events", "err", err)
		return
	}
	defer sub.Close()
	// Disconnections wake the peer's goroutine through its kick channel.
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-sub.Out():
				if !ok {
					return
				}
				if ev := e.(event.EvtPeerConnectednessChanged); ev.Connectedness != network.Connected {
					b.kick(ev.Peer)
				}
			}
		}
	})
	for i, ai := range b.peers {
		wg.Go(func() { b.keep(ctx, ai, uint64(i)) })
	}
	wg.Wait()
}

func (b *bootstrapper) keep(ctx context.Context, ai peer.AddrInfo, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x626f6f74))
	kick := b.kicks[ai.ID]
	delay := b.min
	for ctx.Err() == nil {
		if connected(b.h, ai.ID) {
			delay = b.min
			select { // wait for a disconnection
			case <-ctx.Done():
				return
			case <-kick:
			}
			continue
		}
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := b.h.Connect(dctx, ai)
		cancel()
		if err == nil {
			b.log.Debug("connected to bootstrap peer", "peer", ai.ID)
			continue
		}
		b.log.Debug("dial bootstrap peer", "peer", ai.ID, "err", err, "retry_in", delay)
		wait := delay/2 + time.Duration(rng.Int64N(int64(delay/2)+1))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-kick:
			delay = b.min
		case <-t.C:
			delay = min(2*delay, b.max)
		}
		t.Stop()
	}
}
