package protocol_test

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/chain/statetree"
	"github.com/p2pnode/p2pnode/protocol"
)

// stateServer is a committed ledger (over MemStorage) whose state the
// state protocol serves.
type stateServer struct {
	l        *ledger.Ledger
	info     chain.BlockInfo // the committed block's
	frontier []chain.Hash
	leaves   []statetree.KV // every leaf of the committed state, in key-hash order
}

func newStateServer(tb testing.TB) *stateServer {
	tb.Helper()
	v := chaintest.NewValidators(17, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 4, TxSize: 30, Seed: 17})
	nodes := b.Extend(b.Genesis(), 8)
	l, err := ledger.New(ledger.NewMemStorage(), v.Genesis)
	if err != nil {
		tb.Fatal(err)
	}
	for _, n := range nodes {
		if _, err := l.Execute(n.Block); err != nil {
			tb.Fatal(err)
		}
	}
	for i := 0; i+2 < len(nodes); i++ {
		if err := l.Commit([]*chain.Block{nodes[i].Block}, nodes[i+2].QC.LedgerInfo()); err != nil {
			tb.Fatal(err)
		}
	}
	s := &stateServer{l: l, info: l.Committed()}
	if s.frontier, err = l.FrontierAt(s.info.Version); err != nil {
		tb.Fatal(err)
	}
	all, err := l.StateChunk(s.info.Version, chain.Hash{}, ledger.MaxSnapshotLeaves)
	if err != nil || all == nil || len(all.Leaves) < 20 {
		tb.Fatalf("StateChunk of the whole state: %v, %v", all, err)
	}
	s.leaves = all.Leaves
	return s
}

// response returns the server's answer to req, as a server builds it.
func (s *stateServer) response(tb testing.TB, req protocol.StateRequest) *protocol.StateResponse {
	tb.Helper()
	c, err := s.l.StateChunk(req.Version, req.Start, int(req.MaxLeaves))
	if err != nil {
		tb.Fatal(err)
	}
	r := &protocol.StateResponse{Status: protocol.StatusSucceeded, Chunk: c}
	if req.WithFrontier {
		r.Frontier = s.frontier
	}
	return r
}

func sameKV(a, b statetree.KV) bool {
	return bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Value, b.Value)
}

// TestStateResponseRoundTrip: a real response survives its encoding and
// its chunk and frontier verify as a client checks them.
func TestStateResponseRoundTrip(t *testing.T) {
	s := newStateServer(t)
	req := protocol.StateRequest{Version: s.info.Version, MaxLeaves: 7, WithFrontier: true}
	if err := req.Validate(); err != nil {
		t.Fatal(err)
	}
	enc := encode(t, s.response(t, req))
	if len(enc) > protocol.MaxStateResponseSize {
		t.Fatalf("response of %d bytes over the limit", len(enc))
	}
	var got protocol.StateResponse
	if err := chain.Decode(enc, protocol.MaxStateResponseSize, &got); err != nil {
		t.Fatal(err)
	}
	if got.Status != protocol.StatusSucceeded || got.Chunk == nil || !slices.EqualFunc(got.Chunk.Leaves, s.leaves[:7], sameKV) {
		t.Fatalf("decoded response %+v", got)
	}
	if err := ledger.VerifySnapshotFrontier(got.Frontier, s.info); err != nil {
		t.Fatalf("frontier: %v", err)
	}
	r := statetree.NewRestorer(s.info.Version, s.info.StateRoot)
	if _, err := r.AddChunk(got.Chunk.Leaves, got.Chunk.Proof.RangeProof()); err != nil {
		t.Fatalf("chunk: %v", err)
	}
	// Past the last leaf: no chunk, which encodes as such.
	last := statetree.KeyHash(s.leaves[len(s.leaves)-1].Key)
	end := s.response(t, protocol.StateRequest{Version: s.info.Version, Start: incr(last), MaxLeaves: 7})
	if end.Chunk != nil {
		t.Fatalf("a chunk past the last leaf: %+v", end.Chunk)
	}
	var back protocol.StateResponse
	if err := chain.Decode(encode(t, end), protocol.MaxStateResponseSize, &back); err != nil || back.Chunk != nil || len(back.Frontier) != 0 {
		t.Fatalf("empty response decodes to %+v, %v", back, err)
	}
}

// incr returns h+1 (h is not all ones).
func incr(h chain.Hash) chain.Hash {
	for i := len(h) - 1; i >= 0; i-- {
		if h[i]++; h[i] != 0 {
			break
		}
	}
	return h
}

func TestStateRequestValidate(t *testing.T) {
	tests := []struct {
		name    string
		req     protocol.StateRequest
		wantErr error
	}{
		{"ok", protocol.StateRequest{Version: 9, MaxLeaves: 100}, nil},
		{"with frontier", protocol.StateRequest{Version: 9, Start: chain.Hash{7}, MaxLeaves: 1, WithFrontier: true}, nil},
		{"most leaves", protocol.StateRequest{Version: math.MaxUint64, MaxLeaves: ledger.MaxSnapshotLeaves}, nil},
		{"version 0", protocol.StateRequest{MaxLeaves: 1}, protocol.ErrBadRequest},
		{"no leaves", protocol.StateRequest{Version: 9}, protocol.ErrBadRequest},
		{"too many leaves", protocol.StateRequest{Version: 9, MaxLeaves: ledger.MaxSnapshotLeaves + 1}, protocol.ErrBadRequest},
		{"largest max leaves", protocol.StateRequest{Version: 9, MaxLeaves: math.MaxUint32}, protocol.ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.req.Validate(); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Validate() = %v, want %v", err, tt.wantErr)
			}
			var got protocol.StateRequest
			if err := chain.Decode(encode(t, &tt.req), protocol.MaxStateRequestSize, &got); err != nil || got != tt.req {
				t.Fatalf("round trip = %+v, %v", got, err)
			}
		})
	}
}

// maxResponse returns a response of leaves, with the most siblings and
// frontier hashes a response can have.
func maxResponse(leaves []statetree.KV) *protocol.StateResponse {
	hashes := func(n int, b byte) []chain.Hash {
		out := make([]chain.Hash, n)
		for i := range out {
			out[i] = chain.Hash{b, byte(i)}
			out[i][31] = 0xff
		}
		return out
	}
	return &protocol.StateResponse{
		Status: protocol.StatusSucceeded,
		Chunk: &ledger.StateChunk{Leaves: leaves, Proof: ledger.StateRangeProof{
			FirstDepth: statetree.MaxDepth, LastDepth: statetree.MaxDepth,
			Left: hashes(statetree.MaxDepth, 1), Right: hashes(statetree.MaxDepth, 2),
		}},
		Frontier: hashes(64, 3),
	}
}

// kvs returns n leaves of keys of key bytes and values of value bytes.
func kvs(n, key, value int) []statetree.KV {
	out := make([]statetree.KV, n)
	for i := range out {
		out[i] = statetree.KV{Key: bytes.Repeat([]byte{byte(i)}, key), Value: bytes.Repeat([]byte{0xee}, value)}
	}
	return out
}

// TestStateSizeLimits: the largest requests and responses a server may
// send, the most leaves totalling the most bytes in the costliest shapes,
// fit the stream limits.
func TestStateSizeLimits(t *testing.T) {
	const leaves, bytesMax = ledger.MaxSnapshotLeaves, ledger.MaxSnapshotBytes
	// A leaf has 7 bytes of CBOR framing (an array, two strings of 3) from
	// 256-byte keys and values on, 5 from 24-byte ones: as many of the
	// first as fit with the rest.
	big := (bytesMax - 48*leaves) / (512 - 48)
	heavy := append(kvs(big, chain.MaxKeySize, 256), kvs(leaves-big, 24, 24)...)
	cases := map[string][]statetree.KV{
		"uniform 256-byte leaves": kvs(leaves, 128, 128),
		"most framing":            heavy,
		"largest values":          kvs(bytesMax/statetree.MaxValueSize, chain.MaxKeySize, statetree.MaxValueSize-chain.MaxKeySize),
		"one largest leaf":        kvs(1, chain.MaxKeySize, statetree.MaxValueSize),
	}
	for name, ls := range cases {
		size := 0
		for _, kv := range ls {
			size += len(kv.Key) + len(kv.Value)
		}
		if len(ls) > leaves || size > bytesMax {
			t.Fatalf("%s: %d leaves of %d bytes is past the server's limits", name, len(ls), size)
		}
		enc := encode(t, maxResponse(ls))
		if len(enc) > protocol.MaxStateResponseSize {
			t.Errorf("%s: %d leaves of %d bytes encode to %d bytes, over MaxStateResponseSize %d", name, len(ls), size, len(enc), protocol.MaxStateResponseSize)
			continue
		}
		var got protocol.StateResponse
		if err := chain.Decode(enc, protocol.MaxStateResponseSize, &got); err != nil || len(got.Chunk.Leaves) != len(ls) {
			t.Errorf("%s: the response does not decode within the limit: %v", name, err)
		}
		t.Logf("%s: %d leaves, %d bytes of keys and values, %d encoded (limit %d)", name, len(ls), size, len(enc), protocol.MaxStateResponseSize)
	}
	// Whatever the shapes: at most 7 bytes of framing a leaf, 2 a hash
	// and a few for the rest.
	bound := bytesMax + 7*leaves + (2*statetree.MaxDepth+64)*(chain.HashSize+2) + 64
	if bound > protocol.MaxStateResponseSize {
		t.Errorf("a response may reach %d bytes, over MaxStateResponseSize %d", bound, protocol.MaxStateResponseSize)
	}
	req := protocol.StateRequest{Version: math.MaxUint64, MaxLeaves: math.MaxUint32, WithFrontier: true}
	for i := range req.Start {
		req.Start[i] = 0xff
	}
	if enc := encode(t, &req); len(enc) > protocol.MaxStateRequestSize {
		t.Fatalf("the largest request encodes to %d bytes, over MaxStateRequestSize %d", len(enc), protocol.MaxStateRequestSize)
	}
}

// FuzzStateResponse decodes a response as a client does, within the
// stream limit: a decoded response must re-encode to itself, and its
// chunk and frontier go through the checks a restore makes without a
// panic; only the server's own leaves and frontier may pass them.
func FuzzStateResponse(f *testing.F) {
	s := newStateServer(f)
	first := s.response(f, protocol.StateRequest{Version: s.info.Version, MaxLeaves: 5, WithFrontier: true})
	mid := s.response(f, protocol.StateRequest{Version: s.info.Version, Start: statetree.KeyHash(s.leaves[9].Key), MaxLeaves: 3})
	addSeeds(f, encode(f, first), encode(f, mid),
		encode(f, &protocol.StateResponse{Status: protocol.StatusSucceeded}),
		encode(f, &protocol.StateResponse{Status: protocol.StatusPruned}))
	f.Fuzz(func(t *testing.T, data []byte) {
		decode := decodeAs[protocol.StateResponse](protocol.MaxStateResponseSize)
		roundTrip(t, data, decode)
		r, err := decode(data)
		if err != nil {
			return
		}
		if r.Frontier != nil {
			err := ledger.VerifySnapshotFrontier(r.Frontier, s.info)
			var ve *chain.VerifyError
			switch {
			case err == nil && !slices.Equal(r.Frontier, s.frontier):
				t.Fatal("a forged frontier verifies")
			case err != nil && !errors.As(err, &ve):
				t.Fatalf("frontier error %v is not a peer fault", err)
			}
		}
		if r.Chunk == nil {
			return
		}
		rs := statetree.NewRestorer(s.info.Version, s.info.StateRoot)
		ls, err := rs.AddChunk(r.Chunk.Leaves, r.Chunk.Proof.RangeProof())
		if err != nil {
			var ve *chain.VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("chunk error %v is not a peer fault", err)
			}
			return
		}
		if len(ls) > len(s.leaves) || !slices.EqualFunc(r.Chunk.Leaves, s.leaves[:len(ls)], sameKV) {
			t.Fatalf("a forged first chunk of %d leaves verifies", len(ls))
		}
	})
}

// FuzzStateRequest decodes a request as a server does: a decoded request
// re-encodes to itself, and one that validates is within the limits.
func FuzzStateRequest(f *testing.F) {
	addSeeds(f, encode(f, &protocol.StateRequest{Version: 30, Start: chain.Hash{1, 2, 3}, MaxLeaves: 7, WithFrontier: true}),
		encode(f, &protocol.StateRequest{Version: math.MaxUint64, MaxLeaves: ledger.MaxSnapshotLeaves}))
	f.Fuzz(func(t *testing.T, data []byte) {
		decode := decodeAs[protocol.StateRequest](protocol.MaxStateRequestSize)
		roundTrip(t, data, decode)
		r, err := decode(data)
		if err != nil {
			return
		}
		if err := r.Validate(); err == nil {
			if r.Version == 0 || r.MaxLeaves == 0 || r.MaxLeaves > ledger.MaxSnapshotLeaves {
				t.Fatalf("request %+v validates", r)
			}
		} else if !errors.Is(err, protocol.ErrBadRequest) {
			t.Fatalf("Validate error %v is not ErrBadRequest", err)
		}
	})
}
