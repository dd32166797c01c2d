package node_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/node"
	"github.com/p2pnode/p2pnode/protocol"
)

// wireServer is a running full node holding a chain of n blocks (rounds
// 1 to n; the QC of the last commits round n-2), and a client network to it.
func wireServer(t *testing.T, n int) (*node.Node, *node.Network, *chain.Genesis, []*chaintest.Node) {
	t.Helper()
	v := chaintest.NewValidators(71, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 1, TxSize: 20})
	blocks := b.Extend(b.Genesis(), n)
	srv := startServer(t, v.Genesis, blocks, nil)
	client := newRawHost(t)
	connect(t, client, srv.Host())
	return srv, node.NewNetwork(client, v.Genesis.ChainID), v.Genesis, blocks
}

// TestServeGenesisAndRoundZero pins docs/protocol.md section 7.4: the
// genesis block is served by block retrieval like any block, whatever the
// server has pruned, and is never part of a committed range, so that a
// range from round 0 starts at round 1.
func TestServeGenesisAndRoundZero(t *testing.T) {
	srv, net, g, blocks := wireServer(t, 6)
	if r := srv.Status().CommittedRound; r != 4 {
		t.Fatalf("server committed round %d, want 4", r)
	}
	gb := g.Block()
	ids := func(bs []*chain.Block) []chain.Hash {
		var out []chain.Hash
		for _, b := range bs {
			out = append(out, b.ID)
		}
		return out
	}
	blockTests := []struct {
		name       string
		req        protocol.BlockRequest
		wantStatus protocol.Status
		want       []chain.Hash
	}{
		{"genesis by id", protocol.BlockRequest{BlockID: gb.ID, Count: 1}, protocol.StatusSucceeded, []chain.Hash{gb.ID}},
		{"genesis by id, more asked", protocol.BlockRequest{BlockID: gb.ID, Count: 5}, protocol.StatusNotEnoughBlocks, []chain.Hash{gb.ID}},
		{"walk reaches genesis", protocol.BlockRequest{BlockID: blocks[1].Block.ID, Count: 5}, protocol.StatusNotEnoughBlocks,
			[]chain.Hash{blocks[1].Block.ID, blocks[0].Block.ID, gb.ID}},
		{"target genesis", protocol.BlockRequest{BlockID: blocks[1].Block.ID, Count: 5, Target: gb.ID}, protocol.StatusSucceededWithTarget,
			[]chain.Hash{blocks[1].Block.ID, blocks[0].Block.ID}},
	}
	for _, tt := range blockTests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := net.RequestBlocks(t.Context(), srv.ID(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(resp.Blocks); resp.Status != tt.wantStatus || !equalIDs(got, tt.want) {
				t.Fatalf("status %s, blocks %v; want %s, %v", resp.Status, got, tt.wantStatus, tt.want)
			}
		})
	}
	// The genesis block served is byte for byte the one a client computes
	// from genesis.json, and verifies only as such.
	resp, err := net.RequestBlocks(t.Context(), srv.ID(), protocol.BlockRequest{BlockID: gb.ID, Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Blocks) != 1 {
		t.Fatalf("genesis request: %d blocks", len(resp.Blocks))
	}
	got, _ := chain.Encode(resp.Blocks[0])
	want, _ := chain.Encode(gb)
	if string(got) != string(want) {
		t.Fatalf("served genesis %x, want %x", got, want)
	}

	committedTests := []struct {
		name       string
		req        protocol.CommittedRequest
		wantStatus protocol.Status
		want       []chain.Hash
	}{
		{"from round 0", protocol.CommittedRequest{FromRound: 0, ToRound: 3, MaxBlocks: 10}, protocol.StatusSucceeded,
			[]chain.Hash{blocks[0].Block.ID, blocks[1].Block.ID}},
		{"round 0 only", protocol.CommittedRequest{FromRound: 0, ToRound: 1, MaxBlocks: 10}, protocol.StatusSucceeded, nil},
		{"from round 0, one block", protocol.CommittedRequest{FromRound: 0, ToRound: 10, MaxBlocks: 1}, protocol.StatusSucceeded,
			[]chain.Hash{blocks[0].Block.ID}},
		{"past the committed chain", protocol.CommittedRequest{FromRound: 0, ToRound: 10, MaxBlocks: 10}, protocol.StatusNotEnoughBlocks,
			[]chain.Hash{blocks[0].Block.ID, blocks[1].Block.ID, blocks[2].Block.ID, blocks[3].Block.ID}},
	}
	for _, tt := range committedTests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := net.RequestCommitted(t.Context(), srv.ID(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(resp.Blocks); resp.Status != tt.wantStatus || !equalIDs(got, tt.want) {
				t.Fatalf("status %s, blocks %v; want %s, %v", resp.Status, got, tt.wantStatus, tt.want)
			}
		})
	}
}

func equalIDs(a, b []chain.Hash) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// validatorServer is a running validator (one of four, so it never
// commits by itself) holding a chain of 6 blocks, committed to round 4, and
// a bare host connected to it.
func validatorServer(t *testing.T, requestTimeout time.Duration) (*node.Node, host.Host, *chaintest.Validators, []*chaintest.Node) {
	t.Helper()
	v := chaintest.NewValidators(72, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 1, TxSize: 20})
	blocks := b.Extend(b.Genesis(), 6)
	cfg := testConfig(t, "validator", v.Genesis, v.Keys[0])
	cfg.Limits.RequestTimeout = requestTimeout
	preload(t, cfg.Home, v.Genesis, blocks)
	srv := start(t, cfg)
	client := newRawHost(t)
	connect(t, client, srv.Host())
	return srv, client, v, blocks
}

// wireRequests returns one valid request of every stream protocol, by the
// protocol's name.
func wireRequests(t *testing.T, v *chaintest.Validators, blocks []*chaintest.Node) map[string]any {
	t.Helper()
	n := blocks[len(blocks)-1]
	vd := chain.VoteDataFor(n.Block, n.Info)
	commit, _ := chain.CommitInfo(n.Info, n.Block.QC())
	vote := v.Signers[1].SignVote(vd, commit)
	si := chain.SyncInfo{HighestCommitCert: n.QC, HighestQC: n.QC}
	return map[string]any{
		"blocks":    &protocol.BlockRequest{BlockID: n.Block.ID, Count: 2},
		"committed": &protocol.CommittedRequest{FromRound: 1, ToRound: 3, MaxBlocks: 2},
		"chunks":    &protocol.ChunkRequest{StartVersion: 0, TargetVersion: 4, MaxTxs: 2},
		"state":     &protocol.StateRequest{Version: 4, MaxLeaves: 2, WithFrontier: true},
		"vote":      &protocol.VoteMsg{Vote: *vote, SyncInfo: si},
	}
}

// streamID is the id of the stream protocol name of chain chainID.
func streamID(chainID, name string) libp2pproto.ID {
	return libp2pproto.ID("/p2pnode/" + chainID + "/" + name + "/1.0.0")
}

// expectReset reads from s until it fails and wants a reset. The
// deadline only keeps a broken server from hanging the test.
func expectReset(t *testing.T, s network.Stream) {
	t.Helper()
	_ = s.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err := io.Copy(io.Discard, s)
	if !errors.Is(err, network.ErrReset) {
		t.Fatalf("read: %v, want a stream reset", err)
	}
}

// TestServerFrameLimits: every stream server checks a request's length
// prefix against the limit of docs/protocol.md section 5 before it waits
// for the body: a prefix one byte over the limit is reset at once, long
// before the server's request timeout.
func TestServerFrameLimits(t *testing.T) {
	srv, client, v, _ := validatorServer(t, 10*time.Minute)
	for _, l := range protocol.StreamLimits() {
		t.Run(l.Name, func(t *testing.T) {
			s, err := client.NewStream(t.Context(), srv.ID(), streamID(v.Genesis.ChainID, l.Name))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Write(binary.AppendUvarint(nil, uint64(l.MaxRequest+1))); err != nil {
				t.Fatal(err)
			}
			expectReset(t, s) // the write side stays open: no EOF to end the wait
		})
	}
}

// TestProtocolVersions pins section 6.1: a version the server does not
// speak is refused by multistream-select before any request, a client that
// offers several versions gets 1.0.0, and a request shaped like another
// version (an extra field) is malformed: the stream is reset, no status.
func TestProtocolVersions(t *testing.T) {
	srv, client, v, blocks := validatorServer(t, 10*time.Second)
	chainID := v.Genesis.ChainID
	for _, id := range []libp2pproto.ID{
		libp2pproto.ID("/p2pnode/" + chainID + "/blocks/2.0.0"),
		libp2pproto.ID("/p2pnode/" + chainID + "/blocks/1.1.0"),
		libp2pproto.ID("/p2pnode/" + chainID + "/blocks/1"),
		"/p2pnode/otherchain/blocks/1.0.0",
	} {
		if s, err := client.NewStream(t.Context(), srv.ID(), id); err == nil {
			s.Reset()
			t.Errorf("%s: stream opened, want multistream refusal", id)
		}
	}
	s, err := client.NewStream(t.Context(), srv.ID(), libp2pproto.ID("/p2pnode/"+chainID+"/blocks/2.0.0"), protocol.BlocksID(chainID))
	if err != nil {
		t.Fatal(err)
	}
	if s.Protocol() != protocol.BlocksID(chainID) {
		t.Fatalf("negotiated %s, want %s", s.Protocol(), protocol.BlocksID(chainID))
	}
	// [block_id, count, target, 2]: four fields where version 1 has three.
	id := blocks[5].Block.ID
	body := append([]byte{0x84, 0x58, 0x20}, id[:]...)
	body = append(body, 0x02, 0x58, 0x20)
	body = append(body, make([]byte, 32)...)
	body = append(body, 0x02)
	if err := protocol.WriteFrame(s, body); err != nil {
		t.Fatal(err)
	}
	s.CloseWrite()
	expectReset(t, s)
}

// TestServerIgnoresBytesAfterRequest pins section 7: a server reads one
// request frame and nothing after it; bytes that follow (garbage, a second
// request) are dropped unread, whether or not the client closes its write
// side, and the client still gets its one answer and a clean close.
func TestServerIgnoresBytesAfterRequest(t *testing.T) {
	srv, client, v, blocks := validatorServer(t, 10*time.Second)
	reqs := wireRequests(t, v, blocks)
	for _, closeWrite := range []bool{true, false} {
		for _, l := range protocol.StreamLimits() {
			t.Run(fmt.Sprintf("%s/close_write=%v", l.Name, closeWrite), func(t *testing.T) {
				s, err := client.NewStream(t.Context(), srv.ID(), streamID(v.Genesis.ChainID, l.Name))
				if err != nil {
					t.Fatal(err)
				}
				defer s.Reset()
				var buf bytes.Buffer
				if err := protocol.WriteMsg(&buf, reqs[l.Name]); err != nil {
					t.Fatal(err)
				}
				first := buf.Len()
				_ = protocol.WriteMsg(&buf, reqs[l.Name])             // a second request
				buf.Write([]byte{0xff, 0xff, 0xff, 0xff, 0x7f, 0x00}) // and garbage
				if _, err := s.Write(buf.Bytes()); err != nil {
					if l.MaxResponse == 0 {
						// A protocol without a response: the server may
						// have read the request and reset the stream
						// before the rest arrived, which ignores it too.
						return
					}
					t.Fatal(err)
				}
				if first == buf.Len() {
					t.Fatal("nothing after the request")
				}
				if closeWrite {
					s.CloseWrite()
				}
				_ = s.SetReadDeadline(time.Now().Add(30 * time.Second))
				if l.MaxResponse > 0 {
					var resp []cbor.RawMessage // [status, ...]
					if err := protocol.ReadMsg(s, l.MaxResponse, &resp); err != nil {
						t.Fatalf("response: %v", err)
					}
					var status protocol.Status
					if len(resp) < 2 || cbor.Unmarshal(resp[0], &status) != nil || status != protocol.StatusSucceeded {
						t.Fatalf("response %x, want status succeeded", resp)
					}
				}
				if n, err := s.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
					t.Fatalf("after the answer: %d bytes, %v; want a clean end of stream", n, err)
				}
			})
		}
	}
}
