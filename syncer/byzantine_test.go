package syncer_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/protocol"
	"github.com/p2pnode/p2pnode/syncer"
	"github.com/p2pnode/p2pnode/syncer/syncertest"
)

// The kinds of faulty peers, by what their score must show.
type faultKind int

const (
	faultInvalid     faultKind = iota // provable lies: banned for the sync
	faultTimeout                      // silent or too slow
	faultUnavailable                  // honest refusals
	faultLegal                        // odd but allowed answers
)

type blocksHook = func(ctx context.Context, req protocol.BlockRequest, honest func() *protocol.BlockResponse) (*protocol.BlockResponse, error)
type chunkHook = func(ctx context.Context, req protocol.ChunkRequest, honest func() *protocol.ChunkResponse) (*protocol.ChunkResponse, error)

// fault is one way for a peer to misbehave.
type fault struct {
	name    string
	kind    faultKind
	blocks  func(w *world) blocksHook // nil: honest
	chunk   func(w *world) chunkHook  // nil: honest
	latency time.Duration
}

// firstBlock changes a copy of the first block of an honest answer.
func firstBlock(f func(w *world, b *chain.Block)) func(w *world) blocksHook {
	return func(w *world) blocksHook {
		return func(_ context.Context, _ protocol.BlockRequest, honest func() *protocol.BlockResponse) (*protocol.BlockResponse, error) {
			resp := honest()
			b := chaintest.CloneBlock(resp.Blocks[0])
			f(w, b)
			resp.Blocks[0] = b
			return resp, nil
		}
	}
}

// chunkLie changes a copy of an honest chunk.
func chunkLie(f func(c *ledger.Chunk)) func(w *world) chunkHook {
	return func(w *world) chunkHook {
		return func(_ context.Context, _ protocol.ChunkRequest, honest func() *protocol.ChunkResponse) (*protocol.ChunkResponse, error) {
			resp := honest()
			enc, err := chain.Encode(resp.Chunk)
			if err != nil {
				return nil, err
			}
			var c ledger.Chunk
			if err := chain.Decode(enc, len(enc), &c); err != nil {
				return nil, err
			}
			f(&c)
			return &protocol.ChunkResponse{Status: protocol.StatusSucceeded, Chunk: &c}, nil
		}
	}
}

func status(s protocol.Status) fault {
	return fault{
		name: s.String(), kind: faultUnavailable,
		blocks: func(*world) blocksHook {
			return func(context.Context, protocol.BlockRequest, func() *protocol.BlockResponse) (*protocol.BlockResponse, error) {
				return &protocol.BlockResponse{Status: s}, nil
			}
		},
		chunk: func(*world) chunkHook {
			return func(context.Context, protocol.ChunkRequest, func() *protocol.ChunkResponse) (*protocol.ChunkResponse, error) {
				return &protocol.ChunkResponse{Status: s}, nil
			}
		},
	}
}

// reSignQC replaces the QC embedded in b by one signed by signers of v,
// and reseals b with its author's key.
func reSignQC(w *world, b *chain.Block, v *chaintest.Validators, signers []int) {
	li := b.Data.QuorumCert.SignedLedgerInfo.LedgerInfo
	b.Data.QuorumCert.SignedLedgerInfo = v.SignLedgerInfo(li, signers)
	w.v.Reseal(b)
}

var faults = []fault{
	{name: "wrong block", kind: faultInvalid, blocks: func(w *world) blocksHook {
		return func(_ context.Context, req protocol.BlockRequest, honest func() *protocol.BlockResponse) (*protocol.BlockResponse, error) {
			other := w.nodes[0].Block
			if other.ID == req.BlockID {
				other = w.nodes[1].Block
			}
			return &protocol.BlockResponse{Status: protocol.StatusSucceeded, Blocks: []*chain.Block{other}}, nil
		}
	}},
	{name: "more blocks than asked", kind: faultInvalid, blocks: func(w *world) blocksHook {
		return func(_ context.Context, req protocol.BlockRequest, _ func() *protocol.BlockResponse) (*protocol.BlockResponse, error) {
			more := req
			more.Count++
			resp := syncer.ServeBlocks(w.server.store, &more, protocol.MaxBlockResponseSize)
			for len(resp.Blocks) <= int(req.Count) {
				resp.Blocks = append(resp.Blocks, resp.Blocks[len(resp.Blocks)-1])
			}
			resp.Status = protocol.StatusSucceeded
			return resp, nil
		}
	}},
	{name: "broken parent link", kind: faultInvalid, blocks: func(w *world) blocksHook {
		return func(_ context.Context, req protocol.BlockRequest, honest func() *protocol.BlockResponse) (*protocol.BlockResponse, error) {
			resp := honest()
			if req.Count >= 2 {
				resp.Blocks = append(resp.Blocks[:1], w.nodes[0].Block)
			}
			return resp, nil
		}
	}},
	{name: "bad block signature", kind: faultInvalid, blocks: firstBlock(func(_ *world, b *chain.Block) { b.Signature[0] ^= 1 })},
	{name: "QC signed by non-validators", kind: faultInvalid, blocks: firstBlock(func(w *world, b *chain.Block) {
		other := chaintest.NewValidators(99, len(w.v.Signers))
		reSignQC(w, b, other, other.All())
	})},
	{name: "QC without a quorum", kind: faultInvalid, blocks: firstBlock(func(w *world, b *chain.Block) {
		reSignQC(w, b, w.v, []int{0})
	})},
	{name: "oversize response", kind: faultInvalid, blocks: firstBlock(func(_ *world, b *chain.Block) {
		tx := make([]byte, 1<<20)
		b.Data.Payload = nil
		for range protocol.MaxBlockResponseSize>>20 + 1 {
			b.Data.Payload = append(b.Data.Payload, tx)
		}
	})},
	{name: "chunk with a flipped tx byte", kind: faultInvalid, chunk: chunkLie(func(c *ledger.Chunk) {
		tx := c.Txs[len(c.Txs)-1]
		tx[len(tx)-1] ^= 1
	})},
	{name: "chunk with a wrong proof hash", kind: faultInvalid, chunk: chunkLie(func(c *ledger.Chunk) {
		switch {
		case len(c.Right) > 0:
			c.Right[0][0] ^= 1
		case len(c.Left) > 0:
			c.Left[0][0] ^= 1
		default:
			c.Txs[0][0] ^= 1
		}
	})},
	{name: "chunk at a wrong start version", kind: faultInvalid, chunk: chunkLie(func(c *ledger.Chunk) { c.StartVersion++ })},
	{name: "silent", kind: faultTimeout,
		blocks: func(*world) blocksHook {
			return func(ctx context.Context, _ protocol.BlockRequest, _ func() *protocol.BlockResponse) (*protocol.BlockResponse, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			}
		},
		chunk: func(*world) chunkHook {
			return func(ctx context.Context, _ protocol.ChunkRequest, _ func() *protocol.ChunkResponse) (*protocol.ChunkResponse, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			}
		}},
	// Slower than any timeout, MaxResponseTimeout (60 s) included: every
	// request to it times out with nothing delivered.
	{name: "very slow", kind: faultTimeout, latency: 2 * time.Minute},
	{name: "fewer blocks than asked", kind: faultLegal, blocks: func(*world) blocksHook {
		return func(_ context.Context, _ protocol.BlockRequest, honest func() *protocol.BlockResponse) (*protocol.BlockResponse, error) {
			resp := honest()
			if len(resp.Blocks) > 1 {
				resp.Blocks, resp.Status = resp.Blocks[:len(resp.Blocks)/2], protocol.StatusSucceeded
			}
			return resp, nil
		}
	}},
	{name: "chunk with fewer txs", kind: faultLegal, chunk: func(w *world) chunkHook {
		return func(_ context.Context, req protocol.ChunkRequest, _ func() *protocol.ChunkResponse) (*protocol.ChunkResponse, error) {
			req.MaxTxs = max(1, req.MaxTxs/3)
			return syncer.ServeChunk(w.server.ledger, &req), nil
		}
	}},
	status(protocol.StatusNotEnoughBlocks),
	status(protocol.StatusIDNotFound),
	status(protocol.StatusBusy),
}

// byzantineConfigs are the sync modes every fault is tried against.
func byzantineConfigs() map[string]syncer.Config {
	seed := syncer.SeedConfig()
	seed.ChunkTxs = 16
	parallel := syncer.DefaultConfig()
	parallel.FastForwardRounds = 0
	parallel.ChunkTxs = 16
	parallel.ChunksInFlight = 4
	return map[string]syncer.Config{"seed": seed, "walk": walkConfig(8), "parallel": parallel}
}

// buildGapChain builds n blocks in consecutive rounds and one more after a
// round gap, so that the highest QC commits nothing and differs from the
// highest commit cert: a sync then has three phases.
func buildGapChain(validators, n, txs int) (*chaintest.Validators, []*chaintest.Node) {
	v := chaintest.NewValidators(11, validators)
	b := chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: txs, TxSize: 64, Seed: 3})
	nodes := b.Extend(b.Genesis(), n)
	last := nodes[n-1]
	return v, append(nodes, b.Child(last, last.Round()+2))
}

// spy records the requests a peer received and when it answered.
type spy struct {
	mu sync.Mutex
	// asked are the times requests arrived; firstLie is when the first
	// invalid answer left (zero if none).
	asked    []time.Time
	firstLie time.Time
}

func (s *spy) arrive() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.asked = append(s.asked, now)
	return now
}

func (s *spy) lied(at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.firstLie.IsZero() || at.Before(s.firstLie) {
		s.firstLie = at
	}
}

// delay records a request and, for a liar, waits lieDelay before it
// answers.
func (s *spy) delay(ctx context.Context, kind faultKind) error {
	at := s.arrive()
	if kind != faultInvalid {
		return nil
	}
	select {
	case <-time.After(lieDelay):
		s.lied(at.Add(lieDelay))
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// honestLatency is how long honest peers take to answer, so that each step
// of a sync after a lie happens at a later virtual time than the lie.
const honestLatency = 10 * time.Millisecond

// lieDelay is how long a lying peer takes to answer, so that its requests
// and its answers fall at distinct virtual times.
const lieDelay = 50 * time.Millisecond

// install makes peer p of w behave as f, recording its requests in s.
func (f fault) install(w *world, p *syncertest.Peer, s *spy) {
	p.Latency = f.latency
	if f.blocks != nil {
		h := f.blocks(w)
		p.OnBlocks = func(ctx context.Context, req protocol.BlockRequest, honest func() *protocol.BlockResponse) (*protocol.BlockResponse, error) {
			if err := s.delay(ctx, f.kind); err != nil {
				return nil, err
			}
			return h(ctx, req, honest)
		}
	}
	if f.chunk != nil {
		h := f.chunk(w)
		p.OnChunk = func(ctx context.Context, req protocol.ChunkRequest, honest func() *protocol.ChunkResponse) (*protocol.ChunkResponse, error) {
			if err := s.delay(ctx, f.kind); err != nil {
				return nil, err
			}
			return h(ctx, req, honest)
		}
	}
}

// TestByzantinePeer: the preferred peer (the message's author) misbehaves
// one way while the other validators are honest. The sync completes
// through them, the peer's score shows the fault, a provable liar is never
// asked again in the same sync, and nothing crashes.
func TestByzantinePeer(t *testing.T) {
	v, nodes := buildGapChain(4, 40, 4)
	for cname, cfg := range byzantineConfigs() {
		for _, f := range faults {
			if f.blocks == nil && cfg.FastForwardRounds > 0 {
				continue // no state sync: a chunk fault never shows
			}
			t.Run(cname+"/"+f.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					w := newWorldFrom(t, v, nodes)
					w.setLatency(honestLatency)
					liar := w.author()
					var s spy
					f.install(w, w.net.Peer(liar), &s)
					c, m := w.client(t, cfg)
					ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
					defer cancel()
					if err := m.SyncTo(ctx, w.syncInfo(), liar); err != nil {
						t.Fatalf("sync: %v", err)
					}
					w.checkSynced(t, c)
					if f.kind == faultTimeout && cfg.FastForwardRounds > 0 && cfg.HedgeDelay > 0 {
						// Every block request to the silent peer is hedged
						// and the hedge wins: no timeout is recorded, but
						// the cancelled attempts still rank it below the
						// honest peers.
						for _, h := range w.peerIDs(1, 2, 3) {
							if m.Scores().Score(liar) >= m.Scores().Score(h) {
								t.Errorf("silent peer scores %.2f, honest %s %.2f", m.Scores().Score(liar), h, m.Scores().Score(h))
							}
						}
						return
					}
					checkFaultScore(t, w, m.Scores(), liar, f.kind, w.peerIDs(1, 2, 3))
					if f.kind == faultInvalid {
						checkNotAskedAgain(t, &s)
					}
				})
			})
		}
	}
}

func checkFaultScore(t *testing.T, w *world, scores *syncer.Scores, p peer.ID, kind faultKind, honest []peer.ID) {
	t.Helper()
	switch kind {
	case faultInvalid:
		if scores.Count(p, syncer.OutcomeInvalid) == 0 {
			t.Errorf("no invalid answer recorded for the liar")
		}
	case faultTimeout:
		if scores.Count(p, syncer.OutcomeTimeout) == 0 {
			t.Errorf("no timeout recorded for the silent peer")
		}
	case faultUnavailable:
		if scores.Count(p, syncer.OutcomeUnavailable) == 0 {
			t.Errorf("no refusal recorded for the refusing peer")
		}
	case faultLegal:
		if n := scores.Count(p, syncer.OutcomeInvalid) + scores.Count(p, syncer.OutcomeTimeout); n != 0 {
			t.Errorf("%d legal answers counted as faults", n)
		}
		return
	}
	for _, h := range honest {
		if scores.Score(p) >= scores.Score(h) {
			t.Errorf("faulty peer scores %.2f, honest %s %.2f", scores.Score(p), h, scores.Score(h))
		}
	}
}

func checkNotAskedAgain(t *testing.T, s *spy) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.firstLie.IsZero() {
		t.Fatal("the liar was never asked")
	}
	// A request sent at the instant the lie arrived may have left before
	// the lie was verified; one sent later was sent to a known liar.
	for _, at := range s.asked {
		if at.After(s.firstLie) {
			t.Errorf("liar asked again %v after its first lie", at.Sub(s.firstLie))
		}
	}
}

// TestByzantineMix: several faulty validators at once, the author among
// them, and one honest validator: the sync completes.
func TestByzantineMix(t *testing.T) {
	v, nodes := buildGapChain(7, 40, 4)
	byName := map[string]fault{}
	for _, f := range faults {
		byName[f.name] = f
	}
	mix := []string{"wrong block", "QC signed by non-validators", "chunk with a flipped tx byte", "silent", "busy", "very slow"}
	for cname, cfg := range byzantineConfigs() {
		t.Run(cname, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newWorldFrom(t, v, nodes)
				w.setLatency(honestLatency)
				spies := make([]spy, len(mix))
				for i, name := range mix {
					f, ok := byName[name]
					if !ok {
						t.Fatalf("no fault %q", name)
					}
					f.install(w, w.net.Peer(w.id(i)), &spies[i])
				}
				c, m := w.client(t, cfg)
				ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
				defer cancel()
				if err := m.SyncTo(ctx, w.syncInfo(), w.author()); err != nil {
					t.Fatalf("sync: %v", err)
				}
				w.checkSynced(t, c)
				for i, name := range mix {
					if byName[name].kind == faultInvalid && !spies[i].firstLie.IsZero() {
						checkNotAskedAgain(t, &spies[i])
						if m.Scores().Count(w.id(i), syncer.OutcomeInvalid) == 0 {
							t.Errorf("%s: no invalid answer recorded", name)
						}
					}
				}
				if m.Scores().Count(w.author(), syncer.OutcomeInvalid) == 0 {
					t.Error("the lying author was not caught")
				}
			})
		})
	}
}

// setLatency sets the latency of every peer of w.
func (w *world) setLatency(d time.Duration) {
	for _, id := range w.net.Peers() {
		w.net.Peer(id).Latency = d
	}
}
