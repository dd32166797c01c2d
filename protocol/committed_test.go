package protocol_test

import (
	"errors"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/protocol"
)

func TestCommittedRequestValidate(t *testing.T) {
	tests := []struct {
		name    string
		req     protocol.CommittedRequest
		wantErr error
	}{
		{"ok", protocol.CommittedRequest{FromRound: 1, ToRound: 65, MaxBlocks: 64}, nil},
		{"one round", protocol.CommittedRequest{FromRound: 7, ToRound: 8, MaxBlocks: 1}, nil},
		{"empty range", protocol.CommittedRequest{FromRound: 8, ToRound: 8, MaxBlocks: 1}, protocol.ErrBadRequest},
		{"reversed range", protocol.CommittedRequest{FromRound: 9, ToRound: 8, MaxBlocks: 1}, protocol.ErrBadRequest},
		{"zero max blocks", protocol.CommittedRequest{FromRound: 1, ToRound: 8}, protocol.ErrBadRequest},
		{"too many blocks", protocol.CommittedRequest{FromRound: 1, ToRound: 8, MaxBlocks: protocol.MaxBlocksPerRequest + 1}, protocol.ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.req.Validate(); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Validate() = %v, want %v", err, tt.wantErr)
			}
			_, err := protocol.DecodeCommittedRequest(encode(t, &tt.req))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("DecodeCommittedRequest() = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func committedResponse(tb testing.TB) *protocol.CommittedResponse {
	tb.Helper()
	v := chaintest.NewValidators(5, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 2, TxSize: 16})
	return &protocol.CommittedResponse{Status: protocol.StatusSucceeded, Blocks: chaintest.Blocks(b.Extend(b.Genesis(), 3))}
}

func TestCommittedResponseRoundTrip(t *testing.T) {
	resp := committedResponse(t)
	got, err := protocol.DecodeCommittedResponse(encode(t, resp))
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != resp.Status || len(got.Blocks) != len(resp.Blocks) {
		t.Fatalf("decoded %s with %d blocks, want %s with %d", got.Status, len(got.Blocks), resp.Status, len(resp.Blocks))
	}
	for i, b := range got.Blocks {
		if b.ID != resp.Blocks[i].ID {
			t.Fatalf("block %d: id %s, want %s", i, b.ID.Short(), resp.Blocks[i].ID.Short())
		}
	}
	withNil := &protocol.CommittedResponse{Status: protocol.StatusSucceeded, Blocks: []*chain.Block{resp.Blocks[0], nil}}
	if _, err := protocol.DecodeCommittedResponse(encode(t, withNil)); !errors.Is(err, chain.ErrDecode) {
		t.Fatalf("response with a missing block: %v, want ErrDecode", err)
	}
}

func FuzzDecodeCommittedResponse(f *testing.F) {
	addSeeds(f, encode(f, committedResponse(f)), encode(f, &protocol.CommittedResponse{Status: protocol.StatusBusy}))
	f.Fuzz(func(t *testing.T, data []byte) { roundTrip(t, data, protocol.DecodeCommittedResponse) })
}

func FuzzDecodeCommittedRequest(f *testing.F) {
	addSeeds(f, encode(f, &protocol.CommittedRequest{FromRound: 1, ToRound: 65, MaxBlocks: 64}))
	decode := func(data []byte) (*protocol.CommittedRequest, error) {
		r, err := protocol.DecodeCommittedRequest(data)
		if errors.Is(err, protocol.ErrBadRequest) {
			return nil, chain.ErrDecode // a valid encoding of an invalid request
		}
		return r, err
	}
	f.Fuzz(func(t *testing.T, data []byte) { roundTrip(t, data, decode) })
}
