package consensus_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/chain/blockstore"
	"github.com/p2pnode/p2pnode/chain/blocktree"
	"github.com/p2pnode/p2pnode/chain/chaintest"
	"github.com/p2pnode/p2pnode/chain/ledger"
	"github.com/p2pnode/p2pnode/chain/store"
	"github.com/p2pnode/p2pnode/consensus"
	"github.com/p2pnode/p2pnode/protocol"
)

// captureNet records what an engine sends, and checks that the safety data
// cover a vote or timeout when it leaves.
type captureNet struct {
	mu       sync.Mutex
	safety   *memSafety
	votes    []*protocol.VoteMsg
	to       []peer.ID
	timeouts []*protocol.TimeoutMsg
	props    []*protocol.Proposal
	unsafe   []string
}

func (n *captureNet) Broadcast(m *protocol.ConsensusMsg) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if m.Proposal != nil {
		n.props = append(n.props, m.Proposal)
		return
	}
	if sd, _ := n.safety.SafetyData(); sd.HighestTimeoutRound < m.Timeout.Round {
		n.unsafe = append(n.unsafe, "timeout sent before its safety data were saved")
	}
	n.timeouts = append(n.timeouts, m.Timeout)
}

func (n *captureNet) SendVote(to peer.ID, m *protocol.VoteMsg) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if sd, _ := n.safety.SafetyData(); sd.LastVotedRound < m.Vote.VoteData.Proposed.Round {
		n.unsafe = append(n.unsafe, "vote sent before its safety data were saved")
	}
	n.votes = append(n.votes, m)
	n.to = append(n.to, to)
}

func (n *captureNet) voteRounds() []uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []uint64
	for _, v := range n.votes {
		out = append(out, v.Vote.VoteData.Proposed.Round)
	}
	return out
}

func (n *captureNet) timeoutRounds() []uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []uint64
	for _, t := range n.timeouts {
		out = append(out, t.Round)
	}
	return out
}

// noSync is a Syncer that is never needed: it fails every sync.
type noSync struct{}

var errNoSync = errors.New("no sync in this test")

func (noSync) SyncTo(context.Context, *chain.SyncInfo, peer.ID) error { return errNoSync }

// single is one engine of validator 0 of a 7-validator set (it leads no
// round from 1 to 6), fed by hand.
type single struct {
	v      *chaintest.Validators
	b      *chaintest.Builder
	net    *captureNet
	safety *memSafety
	store  *blockstore.Store
	eng    *consensus.Engine
}

func newSingle(t *testing.T, sd store.SafetyData) *single {
	t.Helper()
	v := chaintest.NewValidators(9, 7)
	l, err := ledger.New(ledger.NewMemStorage(), v.Genesis)
	if err != nil {
		t.Fatal(err)
	}
	root := blocktree.GenesisRoot(v.Genesis)
	bs, err := blockstore.New(l, blockstore.NewMemPersister(), root, nil, nil, blockstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s := &single{v: v, b: chaintest.NewBuilder(v, chaintest.BuilderConfig{TxsPerBlock: 1, TxSize: 16}), safety: &memSafety{sd: sd}, store: bs}
	s.net = &captureNet{safety: s.safety}
	s.eng, err = consensus.New(consensus.Components{
		Signer: v.Signers[0], Verifier: v.Verifier, Store: bs, Syncer: noSync{}, Network: s.net, Safety: s.safety,
	}, consensus.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// run runs the engine until the test ends.
func (s *single) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.eng.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	synctest.Wait()
}

// propose hands the engine n's block with a SyncInfo of n's parent QC (and
// tc, if any), and waits until it is handled.
func (s *single) propose(n *chaintest.Node, tc *chain.TimeoutCert) {
	si := chain.SyncInfo{HighestCommitCert: s.v.Genesis.QC(), HighestQC: *n.Block.QC(), HighestTC: tc}
	s.eng.HandleProposal(&protocol.Proposal{Block: n.Block, SyncInfo: si}, "")
	synctest.Wait()
}

func TestVotesOnlyAboveLastVotedRound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSingle(t, store.SafetyData{Epoch: 1, LastVotedRound: 3})
		s.run(t)
		nodes := s.b.Extend(s.b.Genesis(), 6)
		for _, n := range nodes {
			s.propose(n, nil)
		}
		// Rounds 1-3 were voted before the restart; round 6's vote goes to
		// this validator itself, the leader of round 7.
		if got := s.net.voteRounds(); !slices.Equal(got, []uint64{4, 5}) {
			t.Fatalf("voted in rounds %v, want [4 5]", got)
		}
		for i, to := range s.net.to {
			if want := s.v.Leader(uint64(i) + 5).ID(); to != want {
				t.Fatalf("vote %d went to %s, want the next leader %s", i, to, want)
			}
		}
		st := s.eng.Status()
		if st.LastVotedRound != 6 || st.Round != 6 || st.HighestQCRound != 5 || st.PreferredRound != 4 {
			t.Fatalf("status %+v", st)
		}
		// The QC on 5 in block 6 made 3 ← 4 ← 5 a 3-chain: round 3 is
		// committed, and the vote for 5 committed round 3 too.
		if st.CommittedRound != 3 {
			t.Fatalf("committed round %d, want 3", st.CommittedRound)
		}
		if c := s.net.votes[1].Vote.LedgerInfo.CommitInfo; c.Round != 3 {
			t.Fatalf("vote for round 5 commits round %d, want 3", c.Round)
		}
		if len(s.net.unsafe) > 0 {
			t.Fatal(s.net.unsafe)
		}
		// Proposing the same rounds again changes nothing.
		s.propose(nodes[4], nil)
		if got := s.net.voteRounds(); len(got) != 2 {
			t.Fatalf("voted again: %v", got)
		}
	})
}

func TestVotesOnlyAbovePreferredRound(t *testing.T) {
	for _, tt := range []struct {
		preferred uint64
		wantVote  bool
	}{{3, true}, {4, false}} {
		synctest.Test(t, func(t *testing.T) {
			s := newSingle(t, store.SafetyData{Epoch: 1, LastVotedRound: 5, PreferredRound: tt.preferred})
			s.run(t)
			nodes := s.b.Extend(s.b.Genesis(), 5)
			for _, n := range nodes {
				s.propose(n, nil)
			}
			// A fork at round 6 on block 3 (QC round 3), after round 5 timed
			// out.
			tc := s.v.SignTC(5, s.v.Quorum())
			fork := s.b.Child(nodes[2], 6)
			s.propose(fork, &tc)
			st := s.eng.Status()
			if st.Round != 6 || st.HighestTCRound != 5 {
				t.Fatalf("status %+v, want round 6 after the TC of round 5", st)
			}
			if voted := st.LastVotedRound == 6; voted != tt.wantVote {
				t.Fatalf("preferred round %d: voted %v for a block with QC round 3", tt.preferred, voted)
			}
		})
	}
}

func TestTimeoutCertificateAndBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSingle(t, store.SafetyData{})
		s.run(t)
		pass(time.Second + time.Millisecond) // round 1 times out
		pass(time.Second)                    // and its timeout is sent again
		if got := s.net.timeoutRounds(); !slices.Equal(got, []uint64{1, 1}) {
			t.Fatalf("timeouts %v after 2 s, want round 1 twice", got)
		}
		// Four more timeouts make a quorum of 5 of 7 with this validator's.
		for _, signer := range s.v.Signers[1:5] {
			si := chain.SyncInfo{HighestCommitCert: s.v.Genesis.QC(), HighestQC: s.v.Genesis.QC()}
			s.eng.HandleTimeout(&protocol.TimeoutMsg{Epoch: 1, Round: 1, Signature: signer.SignTimeout(1, 1), SyncInfo: si}, "")
		}
		synctest.Wait()
		st := s.eng.Status()
		if st.Round != 2 || st.HighestTCRound != 1 || st.Timeouts != 1 {
			t.Fatalf("status %+v, want round 2 after a TC of round 1", st)
		}
		// Round 2 follows no QC: its timeout is doubled.
		pass(2*time.Second - time.Millisecond)
		if n := len(s.net.timeoutRounds()); n != 2 {
			t.Fatalf("%d timeouts before round 2's 2 s passed, want 2", n)
		}
		pass(2 * time.Millisecond)
		if got := s.net.timeoutRounds(); !slices.Equal(got, []uint64{1, 1, 2}) {
			t.Fatalf("timeouts %v, want round 2's after 2 s", got)
		}
		s.net.mu.Lock()
		tm := s.net.timeouts[2]
		s.net.mu.Unlock()
		if tm.SyncInfo.HighestTC == nil || tm.SyncInfo.HighestTC.Round != 1 {
			t.Fatal("the round 2 timeout does not carry the TC of round 1")
		}
		if err := s.v.Verifier.VerifyTC(tm.SyncInfo.HighestTC); err != nil {
			t.Fatalf("the TC does not verify: %v", err)
		}
		if len(s.net.unsafe) > 0 {
			t.Fatal(s.net.unsafe)
		}
	})
}

func TestHandleDropsWhenFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSingle(t, store.SafetyData{})
		cap := consensus.DefaultConfig().VoteQueue
		ok := 0
		for range cap + 5 {
			if s.eng.HandleVote(&protocol.VoteMsg{}, "") {
				ok++
			}
		}
		if ok != cap || s.eng.Status().Dropped != 5 {
			t.Fatalf("accepted %d, dropped %d; want %d and 5", ok, s.eng.Status().Dropped, cap)
		}
		if s.eng.HandleMsg(&protocol.ConsensusMsg{}, "") {
			t.Fatal("accepted an empty consensus message")
		}
	})
}

func TestNewRejects(t *testing.T) {
	v := chaintest.NewValidators(9, 4)
	other := chaintest.NewValidators(10, 1)
	base := func() consensus.Components {
		l, _ := ledger.New(ledger.NewMemStorage(), v.Genesis)
		bs, _ := blockstore.New(l, blockstore.NewMemPersister(),
			blocktree.GenesisRoot(v.Genesis), nil, nil, blockstore.Config{})
		return consensus.Components{Signer: v.Signers[0], Verifier: v.Verifier, Store: bs, Syncer: noSync{},
			Network: &captureNet{}, Safety: &memSafety{}}
	}
	tests := []struct {
		name    string
		edit    func(*consensus.Components)
		wantErr error
	}{
		{"ok", func(*consensus.Components) {}, nil},
		{"not a validator", func(c *consensus.Components) { c.Signer = other.Signers[0] }, consensus.ErrNotValidator},
		{"other epoch", func(c *consensus.Components) {
			c.Safety = &memSafety{sd: store.SafetyData{Epoch: 7, LastVotedRound: 3}}
		}, consensus.ErrEpoch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.edit(&c)
			if _, err := consensus.New(c, consensus.DefaultConfig()); !errors.Is(err, tt.wantErr) {
				t.Fatalf("New() = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestRoundRobin(t *testing.T) {
	v := chaintest.NewValidators(9, 4)
	rr := consensus.NewRoundRobin(v.Set)
	ids := v.Set.IDs()
	for r := range uint64(12) {
		if got := rr.Leader(r); got != ids[r%4] {
			t.Fatalf("leader(%d) = %s, want %s", r, got, ids[r%4])
		}
	}
}

func TestInvalidSyncInfoDropsMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSingle(t, store.SafetyData{})
		s.run(t)
		nodes := s.b.Extend(s.b.Genesis(), 2)
		s.propose(nodes[0], nil)
		bad := s.v.SignTC(1, s.v.Quorum())
		bad.Signatures[0].Sig = slices.Clone(bad.Signatures[0].Sig)
		bad.Signatures[0].Sig[0] ^= 1
		s.propose(nodes[1], &bad)
		if got := s.net.voteRounds(); !slices.Equal(got, []uint64{1}) {
			t.Fatalf("voted in rounds %v, want only [1]: a proposal with a forged TC must be dropped", got)
		}
		if st := s.eng.Status(); st.HighestTCRound != 0 {
			t.Fatalf("adopted a forged TC: %+v", st)
		}
		good := s.v.SignTC(1, s.v.Quorum())
		s.propose(nodes[1], &good)
		if got := s.net.voteRounds(); !slices.Equal(got, []uint64{1, 2}) {
			t.Fatalf("voted in rounds %v, want [1 2]", got)
		}
	})
}

// TestAdvancesOnProgressMadeOutside: the node's sync worker inserts QCs into
// the block store behind consensus's back. The engine must then enter the
// round after them as soon as it looks — here on a peer's timeout for that
// round, whose SyncInfo is not ahead of the store — instead of staying in
// its old round, where its timeouts are ignored by peers already past it.
func TestAdvancesOnProgressMadeOutside(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSingle(t, store.SafetyData{})
		s.run(t)
		nodes := s.b.Extend(s.b.Genesis(), 3)
		if err := s.store.InsertChain(chaintest.Blocks(nodes)); err != nil {
			t.Fatal(err)
		}
		if err := s.store.InsertQC(nodes[2].QC); err != nil {
			t.Fatal(err)
		}
		si := s.store.SyncInfo(nil)
		sig := s.v.Signers[1].SignTimeout(s.v.Set.Epoch(), 4)
		s.eng.HandleTimeout(&protocol.TimeoutMsg{Epoch: s.v.Set.Epoch(), Round: 4, Signature: sig, SyncInfo: si}, "")
		synctest.Wait()
		if got := s.eng.Status().Round; got != 4 {
			t.Fatalf("round %d after the store reached QC round 3, want 4", got)
		}
	})
}
