package node_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/node"
	"github.com/p2pnode/p2pnode/protocol"
	"github.com/p2pnode/p2pnode/syncer"
)

// newRawHost is a bare libp2p host on loopback TCP, closed when the test
// ends.
func newRawHost(t testing.TB) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func connect(t testing.TB, a, b host.Host) {
	t.Helper()
	if err := a.Connect(t.Context(), b.Peerstore().PeerInfo(b.ID())); err != nil {
		t.Fatal(err)
	}
}

// TestNetworkMisbehavingServer asks servers that break the protocol: the
// client must blame them (ErrMisbehaved) or time out, never hang.
func TestNetworkMisbehavingServer(t *testing.T) {
	const chainID = "nettest"
	wrongType, err := chain.Encode(&protocol.ChunkRequest{StartVersion: 1, TargetVersion: 2, MaxTxs: 3})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		reply   func(s network.Stream, release <-chan struct{})
		wantErr error
	}{
		{"garbage bytes", func(s network.Stream, _ <-chan struct{}) {
			s.Write([]byte{0x05, 0xff, 0xff, 0xff, 0xff, 0xff})
		}, syncer.ErrMisbehaved},
		{"oversize frame length", func(s network.Stream, _ <-chan struct{}) {
			s.Write([]byte{0xff, 0xff, 0xff, 0x7f}) // 256 MiB
		}, syncer.ErrMisbehaved},
		{"redundant length bytes", func(s network.Stream, _ <-chan struct{}) {
			s.Write([]byte{0x83, 0x00, 0x82, 0x04, 0x80})
		}, syncer.ErrMisbehaved},
		{"truncated frame", func(s network.Stream, _ <-chan struct{}) {
			s.Write([]byte{0x10, 0x82, 0x01})
		}, syncer.ErrMisbehaved},
		{"valid CBOR, wrong content", func(s network.Stream, _ <-chan struct{}) {
			protocol.WriteFrame(s, wrongType)
		}, syncer.ErrMisbehaved},
		{"no response", func(network.Stream, <-chan struct{}) {}, syncer.ErrMisbehaved},
		{"slow sender never finishes", func(s network.Stream, release <-chan struct{}) {
			s.Write([]byte{0x40, 0x82}) // a frame of 64 bytes, 1 sent
			<-release
		}, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server, client := newRawHost(t), newRawHost(t)
			release := make(chan struct{})
			t.Cleanup(func() { close(release) })
			server.SetStreamHandler(protocol.BlocksID(chainID), func(s network.Stream) {
				io.Copy(io.Discard, s) // the request, up to the client's CloseWrite
				tt.reply(s, release)
				s.Close()
			})
			connect(t, client, server)
			ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
			defer cancel()
			req := protocol.BlockRequest{BlockID: chain.Hash{1}, Count: 1}
			resp, err := node.NewNetwork(client, chainID).RequestBlocks(ctx, server.ID(), req)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("RequestBlocks = %+v, %v; want %v", resp, err, tt.wantErr)
			}
			if errors.Is(tt.wantErr, context.DeadlineExceeded) && errors.Is(err, syncer.ErrMisbehaved) {
				t.Fatalf("a slow peer is not a misbehaving one: %v", err)
			}
		})
	}
}

// TestServerSurvivesBadClients opens streams to a node's block server that
// send garbage or stall in the middle of a request: the server resets them
// (at once, or after its request timeout) and keeps serving honest clients.
func TestServerSurvivesBadClients(t *testing.T) {
	v := chaintest.NewValidators(22, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 1, TxSize: 20})
	blocks := b.Extend(b.Genesis(), 5)
	srv := startServer(t, v.Genesis, blocks, func(cfg *node.Config) { cfg.Limits.RequestTimeout = 300 * time.Millisecond })
	chainID := v.Genesis.ChainID

	bad := newRawHost(t)
	connect(t, bad, srv.Host())
	stalled, err := bad.NewStream(t.Context(), srv.ID(), protocol.BlocksID(chainID))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stalled.Write([]byte{0x40, 0x83}); err != nil { // 64 bytes announced, 1 sent
		t.Fatal(err)
	}
	garbage, err := bad.NewStream(t.Context(), srv.ID(), protocol.BlocksID(chainID))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := garbage.Write([]byte{0x03, 0xff, 0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	garbage.CloseWrite()

	// An honest client is served meanwhile.
	honest := newRawHost(t)
	connect(t, honest, srv.Host())
	last := blocks[len(blocks)-1].Block
	resp, err := node.NewNetwork(honest, chainID).RequestBlocks(t.Context(), srv.ID(),
		protocol.BlockRequest{BlockID: last.ID, Count: 3})
	if err != nil {
		t.Fatalf("honest request: %v", err)
	}
	if resp.Status != protocol.StatusSucceeded || len(resp.Blocks) != 3 || resp.Blocks[0].ID != last.ID {
		t.Fatalf("honest response: status %v, %d blocks", resp.Status, len(resp.Blocks))
	}

	// Both bad streams end in a reset, not an answer.
	for name, s := range map[string]network.Stream{"garbage": garbage, "stalled": stalled} {
		s.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := s.Read(make([]byte, 16))
		if !errors.Is(err, network.ErrReset) {
			t.Errorf("%s stream: read %d bytes, %v; want a reset", name, n, err)
		}
	}
}

// TestServerRateLimit: past its token bucket a peer gets status busy.
func TestServerRateLimit(t *testing.T) {
	v := chaintest.NewValidators(23, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 1, TxSize: 20})
	blocks := b.Extend(b.Genesis(), 3)
	srv := startServer(t, v.Genesis, blocks, func(cfg *node.Config) {
		cfg.Limits.ServeRate = 0.001
		cfg.Limits.ServeBurst = 2
	})

	statuses := askThrice(t, srv, v.Genesis.ChainID, protocol.BlockRequest{BlockID: blocks[2].Block.ID, Count: 1})
	if !slices.Equal(statuses, twiceThenBusy) {
		t.Fatalf("statuses %v, want %v", statuses, twiceThenBusy)
	}
}

// twiceThenBusy is what a peer gets past a bucket that holds two answers.
var twiceThenBusy = []protocol.Status{protocol.StatusSucceeded, protocol.StatusSucceeded, protocol.StatusBusy}

// askThrice sends req to srv three times from a new host and returns the
// statuses of the answers.
func askThrice(t *testing.T, srv *node.Node, chainID string, req protocol.BlockRequest) []protocol.Status {
	t.Helper()
	client := newRawHost(t)
	connect(t, client, srv.Host())
	net := node.NewNetwork(client, chainID)
	var statuses []protocol.Status
	for range 3 {
		resp, err := net.RequestBlocks(t.Context(), srv.ID(), req)
		if err != nil {
			t.Fatal(err)
		}
		statuses = append(statuses, resp.Status)
	}
	return statuses
}

// TestServerByteLimit: a peer is served while its byte bucket is not in
// debt; a response takes its size, so past the bucket the peer gets status
// busy however few requests it made.
func TestServerByteLimit(t *testing.T) {
	v := chaintest.NewValidators(23, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 10, TxSize: 200})
	blocks := b.Extend(b.Genesis(), 3)
	srv := startServer(t, v.Genesis, blocks, func(cfg *node.Config) {
		cfg.Limits.ServeBytesRate = 1 // a byte per second: no refill within the test
		cfg.Limits.ServeBytesBurst = 3000
	})

	// One block of over 2,000 bytes: two answers exhaust 3,000.
	statuses := askThrice(t, srv, v.Genesis.ChainID, protocol.BlockRequest{BlockID: blocks[2].Block.ID, Count: 1})
	if !slices.Equal(statuses, twiceThenBusy) {
		t.Fatalf("statuses %v, want %v (two responses of over 2,000 bytes exhaust 3,000)", statuses, twiceThenBusy)
	}
}

// TestRequestIdleTimeout: a server that reads the request and then sends
// nothing fails the request once the idle timeout passes, long before the
// request's own deadline, with an error the syncer takes for a timeout.
func TestRequestIdleTimeout(t *testing.T) {
	v := chaintest.NewValidators(23, 4)
	server, client := newRawHost(t), newRawHost(t)
	release := make(chan struct{})
	defer close(release)
	server.SetStreamHandler(protocol.BlocksID(v.Genesis.ChainID), func(s network.Stream) {
		defer s.Reset()
		_, _ = protocol.ReadFrame(s, protocol.MaxBlockRequestSize)
		<-release // never answers
	})
	connect(t, client, server)
	net := node.NewNetwork(client, v.Genesis.ChainID)
	net.SetIdleTimeout(200 * time.Millisecond)
	ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
	defer cancel()
	_, err := net.RequestBlocks(ctx, server.ID(), protocol.BlockRequest{BlockID: v.Genesis.Block().ID, Count: 1})
	if !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		t.Fatalf("RequestBlocks = %v (request context: %v); want a timeout before the context ends", err, ctx.Err())
	}
	if errors.Is(err, syncer.ErrMisbehaved) {
		t.Fatalf("a stalled response is not proof of misbehaviour: %v", err)
	}
}
