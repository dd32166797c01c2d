package node

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/protocol"
)

// relayer is a bare GossipSub v1.1 peer spoken by hand, as a js-libp2p
// peer behaves: it subscribes to a topic, hands every message it receives
// to the test, and sends whatever RPC the test gives it.
type relayer struct {
	h    host.Host
	msgs chan *pb.Message
	out  network.Stream
}

func newRelayer(t *testing.T) *relayer {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	r := &relayer{h: h, msgs: make(chan *pb.Message, 64)}
	h.SetStreamHandler(pubsub.GossipSubID_v11, func(s network.Stream) {
		br := bufio.NewReader(s)
		for {
			n, err := binary.ReadUvarint(br)
			if err != nil || n > 1<<20 {
				s.Reset()
				return
			}
			buf := make([]byte, n)
			if _, err := io.ReadFull(br, buf); err != nil {
				s.Reset()
				return
			}
			var rpc pb.RPC
			if err := proto.Unmarshal(buf, &rpc); err != nil {
				s.Reset()
				return
			}
			for _, m := range rpc.GetPublish() {
				select {
				case r.msgs <- m:
				default:
				}
			}
		}
	})
	return r
}

// send writes rpc to p on the relayer's own GossipSub stream.
func (r *relayer) send(t *testing.T, p peer.ID, rpc *pb.RPC) {
	t.Helper()
	if r.out == nil {
		s, err := r.h.NewStream(t.Context(), p, pubsub.GossipSubID_v11)
		if err != nil {
			t.Fatal(err)
		}
		r.out = s
	}
	data, err := proto.Marshal(rpc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.out.Write(append(binary.AppendUvarint(nil, uint64(len(data))), data...)); err != nil {
		t.Fatal(err)
	}
}

// signed returns a message of r on topic, signed as StrictSign wants.
func (r *relayer) signed(t *testing.T, topic string, data []byte) *pb.Message {
	t.Helper()
	m := &pb.Message{From: []byte(r.h.ID()), Data: data, Seqno: []byte{0, 0, 0, 0, 0, 0, 0, 1}, Topic: &topic}
	raw, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := r.h.Peerstore().PrivKey(r.h.ID()).Sign(append([]byte("libp2p-pubsub:"), raw...))
	if err != nil {
		t.Fatal(err)
	}
	m.Signature = sig
	return m
}

// scoreWatch records a node's peer scores and rejection reasons.
type scoreWatch struct {
	mu          sync.Mutex
	scores      map[peer.ID]float64
	snaps       int
	rejects     []string
	*rejections // for the no-op methods; RejectMessage is the watch's
}

func (w *scoreWatch) inspect(s map[peer.ID]float64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.scores = s
	w.snaps++
}

func (w *scoreWatch) RejectMessage(_ *pubsub.Message, reason string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rejects = append(w.rejects, reason)
}

// after waits until reason was traced and two score snapshots followed it,
// and returns the last one's score of p.
func (w *scoreWatch) after(t *testing.T, reason string, p peer.ID) float64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	seenAt := -1
	for {
		w.mu.Lock()
		if seenAt < 0 {
			for _, r := range w.rejects {
				if r == reason {
					seenAt = w.snaps
				}
			}
		}
		score, ok := w.scores[p]
		done := seenAt >= 0 && w.snaps >= seenAt+2 && ok
		w.mu.Unlock()
		if done {
			return score
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q rejection with a score of %s after it", reason, p)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOwnMessageRelayedBackIsNotPenalised runs the node's GossipSub router
// on loopback with a peer that relays the node's own message back to it,
// as js-libp2p does: the copy is dropped, and the peer's score stays
// non-negative. A message of its own that fails validation then costs it
// the penalty of docs/protocol.md section 8.2, so the score is live.
func TestOwnMessageRelayedBackIsNotPenalised(t *testing.T) {
	v := chaintest.NewValidators(41, 4)
	chainID := v.Genesis.ChainID
	h, err := libp2p.New(libp2p.Identity(chaintest.Key(41, 99)), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	var results []pubsub.ValidationResult
	var mu sync.Mutex
	vals := &validators{verifier: v.Verifier, log: slog.New(slog.DiscardHandler), result: func(_ string, r pubsub.ValidationResult) {
		mu.Lock()
		results = append(results, r)
		mu.Unlock()
	}}
	w := &scoreWatch{rejections: &rejections{}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	g, err := startGossip(ctx, h, chainID, vals, slog.New(slog.DiscardHandler),
		pubsub.WithRawTracer(w), pubsub.WithPeerScoreInspect(w.inspect, 20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.close)

	r := newRelayer(t)
	if err := r.h.Connect(t.Context(), peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	topic := protocol.TxTopic(chainID)
	sub := true
	r.send(t, h.ID(), &pb.RPC{Subscriptions: []*pb.RPC_SubOpts{{Subscribe: &sub, Topicid: &topic}}})

	// The node publishes until the relayer is known to hold its message.
	var own *pb.Message
	for own == nil {
		if err := publish(t.Context(), g.tx, &protocol.TxMsg{Txs: [][]byte{[]byte("own")}}); err != nil {
			t.Fatal(err)
		}
		select {
		case own = <-r.msgs:
		case <-time.After(100 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatal("test ended")
		}
	}
	if peer.ID(own.GetFrom()) != h.ID() {
		t.Fatalf("relayer got a message from %s, want the node's", peer.ID(own.GetFrom()))
	}
	r.send(t, h.ID(), &pb.RPC{Publish: []*pb.Message{own}})
	if s := w.after(t, pubsub.RejectSelfOrigin, r.h.ID()); s < 0 {
		t.Fatalf("relaying the node's own message back scored the relayer %v, want >= 0", s)
	}

	bad, err := chain.Encode(&protocol.TxMsg{Txs: [][]byte{{}}}) // an empty transaction: Reject
	if err != nil {
		t.Fatal(err)
	}
	r.send(t, h.ID(), &pb.RPC{Publish: []*pb.Message{r.signed(t, topic, bad)}})
	if s := w.after(t, pubsub.RejectValidationFailed, r.h.ID()); s >= 0 {
		t.Fatalf("an invalid message scored the relayer %v, want < 0", s)
	}
	mu.Lock()
	defer mu.Unlock()
	rejected := 0
	for _, res := range results {
		if res == pubsub.ValidationReject {
			rejected++
		}
	}
	if rejected != 1 {
		t.Fatalf("validator results %v, want one reject: the invalid message", results)
	}
}

// TestRejectionsScore: a counted rejection costs -100 times the topic's
// weight times the count squared, decays to 1% in an hour and is then
// forgotten; reasons that prove no fault cost nothing.
func TestRejectionsScore(t *testing.T) {
	names := topicNames("c")
	now := time.Unix(1000, 0)
	r := newRejections(names, func() time.Time { return now })
	p := peer.ID("relayer")
	msg := func(kind string) *pubsub.Message {
		topic := names[kind]
		return &pubsub.Message{Message: &pb.Message{Topic: &topic}, ReceivedFrom: p}
	}
	for _, reason := range []string{pubsub.RejectSelfOrigin, pubsub.RejectValidationIgnored, pubsub.RejectValidationThrottled,
		pubsub.RejectValidationQueueFull, pubsub.RejectBlacklstedPeer} {
		r.RejectMessage(msg(topicConsensus), reason)
	}
	if s := r.score(p); s != 0 {
		t.Fatalf("score %v after no-fault rejections, want 0", s)
	}
	r.RejectMessage(msg(topicConsensus), pubsub.RejectValidationFailed)
	r.RejectMessage(msg(topicConsensus), pubsub.RejectInvalidSignature)
	r.RejectMessage(msg(topicTx), pubsub.RejectValidationFailed)
	if s, want := r.score(p), -100*(1*4+0.2*1); math.Abs(s-want) > 1e-9 {
		t.Fatalf("score %v, want %v", s, want)
	}
	now = now.Add(30 * time.Minute) // counts at 10%
	if s, want := r.score(p), -100*(1*0.2*0.2+0.2*0.1*0.1); math.Abs(s-want) > 1e-9 {
		t.Fatalf("score after half an hour %v, want %v", s, want)
	}
	now = now.Add(2 * time.Hour)
	if s := r.score(p); s != 0 {
		t.Fatalf("score %v once decayed, want 0", s)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.peers) != 0 {
		t.Fatalf("%d peers remembered after decay", len(r.peers))
	}
}

// TestOwnMessageValidation: the node's own publication is validated like
// any message; a copy of it relayed by a peer is ignored, never rejected.
func TestOwnMessageValidation(t *testing.T) {
	v := chaintest.NewValidators(42, 4)
	self := peer.ID("self")
	var got []pubsub.ValidationResult
	vals := &validators{verifier: v.Verifier, self: self, log: slog.New(slog.DiscardHandler),
		result: func(_ string, r pubsub.ValidationResult) { got = append(got, r) }}
	bad, _ := chain.Encode(&protocol.TxMsg{Txs: [][]byte{{}}})
	tests := []struct {
		name string
		from peer.ID
		via  peer.ID
		want pubsub.ValidationResult
	}{
		{"own publication, invalid", self, self, pubsub.ValidationReject},
		{"own message relayed back", self, "relayer", pubsub.ValidationIgnore},
		{"peer's message", "relayer", "relayer", pubsub.ValidationReject},
	}
	for _, tt := range tests {
		m := &pubsub.Message{Message: &pb.Message{Data: bad, From: []byte(tt.from)}, ReceivedFrom: tt.via}
		for _, check := range []pubsub.ValidatorEx{vals.validateTx, vals.validateSyncInfo, vals.validateConsensus} {
			if r := check(t.Context(), tt.via, m); r != tt.want {
				t.Errorf("%s: %v, want %v", tt.name, r, tt.want)
			}
		}
	}
}
