package consensus

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/protocol"
)

// propose proposes a block for the current round, once: it extends the
// highest certified block with the highest QC, fills the payload from the
// mempool, inserts the block (persisting it), broadcasts it with this
// node's SyncInfo, and votes for it.
func (e *Engine) propose(ctx context.Context) {
	r := e.round
	if e.proposed >= r {
		return
	}
	e.proposed = r
	_, parent := e.store.HighestCertifiedBlock()
	hqc := e.store.HighestQC()
	ts := max(uint64(max(time.Now().UnixMicro(), 0)), parent.TimestampUsecs+1)
	b := chain.NewProposal(e.signer, r, ts, hqc, e.payload())
	info, err := e.store.ExecuteAndInsertBlock(b)
	if err != nil {
		e.log.Error("cannot insert own proposal", "round", r, "err", err)
		return
	}
	e.nProposals++
	e.log.Debug("proposing", "round", r, "block_id", b.ID.Short(), "parent_round", parent.Round, "txs", len(b.Payload()))
	e.net.Broadcast(&protocol.ConsensusMsg{Proposal: &protocol.Proposal{Block: b, SyncInfo: e.syncInfo()}})
	e.vote(b, info)
}

// payload pulls transactions from the mempool and keeps the longest prefix
// within the configured and the protocol's limits.
func (e *Engine) payload() [][]byte {
	if e.mempool == nil || e.cfg.MaxBlockTxs == 0 {
		return nil
	}
	txs := e.mempool.Pull(e.cfg.MaxBlockTxs, e.cfg.MaxBlockBytes)
	size := 0
	for i, tx := range txs {
		size += len(tx)
		if i >= e.cfg.MaxBlockTxs || len(tx) == 0 || len(tx) > chain.MaxTxSize || size > e.cfg.MaxBlockBytes {
			return txs[:i]
		}
	}
	return txs
}

// onProposal handles a proposal: verified, its SyncInfo processed (syncing
// if it is ahead), the block's QC inserted, the block executed and inserted,
// and voted for if it is the current round's and the safety rules allow.
func (e *Engine) onProposal(ctx context.Context, p *protocol.Proposal, from peer.ID) {
	b := p.Block
	if b == nil || b.Round() < e.round {
		return
	}
	if err := e.verifier.VerifyBlock(b); err != nil {
		e.log.Warn("invalid proposal", "peer", from, "err", err)
		return
	}
	author := b.Author()
	if b.IsGenesis() || e.leaders.Leader(b.Round()) != author {
		e.log.Warn("proposal not from the round's leader", "peer", from, "author", author, "round", b.Round())
		return
	}
	if !e.processSyncInfo(ctx, &p.SyncInfo, author, b.QC()) {
		return
	}
	e.insertQC(ctx, *b.QC(), author)
	e.advanceRound(ctx)
	if b.Round() != e.round {
		e.log.Debug("proposal not for the current round", "round", b.Round(), "current_round", e.round)
		return
	}
	info, err := e.store.ExecuteAndInsertBlock(b)
	if err != nil {
		e.log.Debug("cannot insert proposal", "round", b.Round(), "block_id", b.ID.Short(), "err", err)
		return
	}
	e.vote(b, info)
}

// vote votes for b, executed to info, if the safety rules allow: b's round
// is above the last voted round and b's QC is not below the preferred
// round. The new safety data are persisted before the vote is sent to the
// next round's leader.
func (e *Engine) vote(b *chain.Block, info chain.BlockInfo) {
	r := b.Round()
	if r <= e.sd.LastVotedRound {
		e.log.Debug("not voting: already voted or timed out", "round", r, "last_voted_round", e.sd.LastVotedRound)
		return
	}
	if b.QC().Round() < e.sd.PreferredRound {
		e.log.Debug("not voting: block below the preferred round", "round", r,
			"qc_round", b.QC().Round(), "preferred_round", e.sd.PreferredRound)
		return
	}
	commit, _ := chain.CommitInfo(info, b.QC())
	v := e.signer.SignVote(chain.VoteDataFor(b, info), commit)
	sd := e.sd
	sd.LastVotedRound = r
	sd.PreferredRound = max(sd.PreferredRound, b.QC().ParentBlock().Round)
	sd.LastVote = v
	if err := e.safety.SaveSafetyData(sd); err != nil {
		e.log.Error("cannot save safety data; not voting", "round", r, "err", err)
		return
	}
	e.sd = sd
	msg := &protocol.VoteMsg{Vote: *v, SyncInfo: e.syncInfo()}
	if next := e.leaders.Leader(r + 1); next == e.self {
		e.selfVotes = append(e.selfVotes, msg)
	} else {
		e.net.SendVote(next, msg)
	}
}

// onVote handles a vote sent to this validator as the leader of the round
// after the vote's, or re-sent to every validator by a voter whose round
// timed out: verified (own votes excepted), its SyncInfo processed, then
// counted; a quorum forms a QC, which is inserted and advances the round.
func (e *Engine) onVote(ctx context.Context, m *protocol.VoteMsg, from peer.ID, own bool) {
	v := &m.Vote
	r := v.VoteData.Proposed.Round
	if r <= e.hqcRound() || r+voteWindow < e.round {
		return
	}
	if !own {
		if err := e.verifier.VerifyVote(v); err != nil {
			e.log.Warn("invalid vote", "peer", from, "err", err)
			return
		}
		if !e.processSyncInfo(ctx, &m.SyncInfo, v.Author, nil) {
			return
		}
	}
	if r <= e.hqcRound() || r > e.round || r+voteWindow < e.round {
		return
	}
	qc, ok := e.addVote(v)
	if !ok {
		return
	}
	e.log.Debug("quorum certificate", "round", r, "block_id", qc.CertifiedBlock().ID.Short())
	e.insertQC(ctx, qc, v.Author)
	e.advanceRound(ctx)
}

// voteRound collects the votes of one round.
type voteRound struct {
	byAuthor map[peer.ID]chain.Hash // the ledger info each author signed
	byLI     map[chain.Hash]*voteSet
}

// voteSet collects the votes for one ledger info.
type voteSet struct {
	vd    chain.VoteData
	li    chain.LedgerInfo
	sigs  map[peer.ID]chain.Signature
	power uint64
	done  bool
}

// addVote counts a verified vote; it returns the QC when the vote completes
// a quorum for its ledger info. An author's second vote in a round is
// ignored (and logged: honest validators never vote twice).
func (e *Engine) addVote(v *chain.Vote) (chain.QuorumCert, bool) {
	r := v.VoteData.Proposed.Round
	vr := e.voteAgg[r]
	if vr == nil {
		vr = &voteRound{byAuthor: make(map[peer.ID]chain.Hash), byLI: make(map[chain.Hash]*voteSet)}
		e.voteAgg[r] = vr
	}
	h := v.LedgerInfo.Hash()
	if prev, ok := vr.byAuthor[v.Author]; ok {
		if prev != h {
			e.log.Warn("equivocating vote", "author", v.Author, "round", r)
		}
		return chain.QuorumCert{}, false
	}
	vr.byAuthor[v.Author] = h
	vs := vr.byLI[h]
	if vs == nil {
		vs = &voteSet{vd: v.VoteData, li: v.LedgerInfo, sigs: make(map[peer.ID]chain.Signature)}
		vr.byLI[h] = vs
	}
	if vs.done {
		return chain.QuorumCert{}, false
	}
	vs.sigs[v.Author] = chain.Signature{Signer: v.Author, Sig: v.Signature}
	vs.power += e.vs.Power(v.Author)
	if !e.vs.HasQuorum(vs.power) {
		return chain.QuorumCert{}, false
	}
	vs.done = true
	return chain.QuorumCert{
		VoteData:         vs.vd,
		SignedLedgerInfo: chain.LedgerInfoWithSignatures{LedgerInfo: vs.li, Signatures: sortedSigs(vs.sigs)},
	}, true
}
