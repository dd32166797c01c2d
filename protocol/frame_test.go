package protocol_test

import (
	"bytes"
	"testing"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/protocol"
)

// committedFrames returns two framed committed-range responses of n blocks
// each, of different blocks, and their bodies.
func committedFrames(t testing.TB, n int) (frames, bodies [2][]byte) {
	t.Helper()
	v := chaintest.NewValidators(5, 4)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 100, TxSize: 100, Seed: 9})
	blocks := chaintest.Blocks(b.Extend(b.Genesis(), 2*n))
	for i := range frames {
		body, err := chain.Encode(&protocol.CommittedResponse{Status: protocol.StatusSucceeded, Blocks: blocks[i*n : (i+1)*n]})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := protocol.WriteFrame(&buf, body); err != nil {
			t.Fatal(err)
		}
		frames[i], bodies[i] = buf.Bytes(), body
	}
	return frames, bodies
}

// TestReadMsgKeepsNothingOfTheFrame: ReadMsg reads frames into reused
// buffers, so a value it decoded must hold none of the frame's bytes; a
// second read, into the buffer of the first, leaves the first value as it
// was.
func TestReadMsgKeepsNothingOfTheFrame(t *testing.T) {
	frames, bodies := committedFrames(t, 8) // over copyBelow: the large-frame path
	if len(bodies[0]) < 64<<10 {
		t.Fatalf("frame of %d bytes: want one written without a copy", len(bodies[0]))
	}
	var first, second protocol.CommittedResponse
	if err := protocol.ReadMsg(bytes.NewReader(frames[0]), protocol.MaxCommittedResponseSize, &first); err != nil {
		t.Fatal(err)
	}
	if err := protocol.ReadMsg(bytes.NewReader(frames[1]), protocol.MaxCommittedResponseSize, &second); err != nil {
		t.Fatal(err)
	}
	for i, r := range []*protocol.CommittedResponse{&first, &second} {
		again, err := chain.Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, bodies[i]) {
			t.Fatalf("response %d changed after a later read", i)
		}
	}
}

// BenchmarkReadMsg reads and decodes a committed-range response of 64
// blocks of 100 × 100 B; ns/op is per response.
func BenchmarkReadMsg(b *testing.B) {
	frames, _ := committedFrames(b, 64)
	b.SetBytes(int64(len(frames[0])))
	b.ReportAllocs()
	for b.Loop() {
		var resp protocol.CommittedResponse
		if err := protocol.ReadMsg(bytes.NewReader(frames[0]), protocol.MaxCommittedResponseSize, &resp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteFrame frames a 640 KB body.
func BenchmarkWriteFrame(b *testing.B) {
	_, bodies := committedFrames(b, 64)
	b.SetBytes(int64(len(bodies[0])))
	b.ReportAllocs()
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		if err := protocol.WriteFrame(&buf, bodies[0]); err != nil {
			b.Fatal(err)
		}
	}
}
