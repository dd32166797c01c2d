package consensus

import (
	"bytes"
	"context"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/protocol"
)

// voteWindow bounds the rounds below the current one whose votes are still
// collected (a late QC is still worth forming while it is above the highest
// QC).
const voteWindow = 8

// advanceRound enters round max(HQC round, HTC round) + 1 if that is past
// the current round.
func (e *Engine) advanceRound(ctx context.Context) {
	hqc := e.hqcRound()
	r := max(hqc, e.highestTCRound()) + 1
	if r <= e.round {
		return
	}
	e.round = r
	e.roundTimeout = e.cfg.roundTimeout(r - hqc - 1)
	e.timer.Reset(e.roundTimeout)
	for k := range e.voteAgg {
		if k <= hqc || k+voteWindow < r {
			delete(e.voteAgg, k)
		}
	}
	for k := range e.timeoutAgg {
		if k < r {
			delete(e.timeoutAgg, k)
		}
	}
	e.log.Debug("new round", "round", r, "hqc_round", hqc, "htc_round", e.highestTCRound(),
		"timeout", e.roundTimeout, "leader", e.leaders.Leader(r))
	if e.leaders.Leader(r) == e.self {
		e.propose(ctx)
	}
}

// processSyncInfo brings the local state up to si, sent by author, if si
// is ahead: it verifies si, syncs to its highest commit cert and QC through
// the syncer when they are ahead (with the round timeout as deadline),
// adopts its TC when higher, and advances the round. It reports false when
// si does not verify: the message carrying it must be dropped.
//
// verified, if not nil, is a QC of the message verified already (a
// proposal's block QC); a certificate of si equal to it, or to the local
// highest QC or commit cert, is not verified again.
func (e *Engine) processSyncInfo(ctx context.Context, si *chain.SyncInfo, author peer.ID, verified *chain.QuorumCert) bool {
	local := e.store.SyncInfo(nil)
	commitAhead := si.CommitRound() > local.CommitRound()
	qcAhead := si.HighestQC.Round() > local.HighestQC.Round()
	tcAhead := si.HighestTC != nil && si.HighestTC.Round > e.highestTCRound()
	if !commitAhead && !qcAhead && !tcAhead {
		// The store may be ahead of the round all the same: the node's
		// sync worker inserts certificates behind consensus's back.
		e.advanceRound(ctx)
		return true
	}
	if err := e.verifier.VerifySyncInfo(si, verified, &local.HighestQC, &local.HighestCommitCert); err != nil {
		e.log.Warn("invalid sync info", "peer", author, "err", err)
		return false
	}
	switch {
	case !commitAhead && !qcAhead:
	case e.store.BlockExists(si.HighestCommitCert.CertifiedBlock().ID) && e.store.BlockExists(si.HighestQC.CertifiedBlock().ID):
		// Nothing to fetch: insert the certificates directly.
		if commitAhead {
			e.insertQC(ctx, si.HighestCommitCert, author)
		}
		e.insertQC(ctx, si.HighestQC, author)
	default:
		target := *si
		if !commitAhead {
			// Our commit cert's certified block is in the tree; theirs may
			// be committed and pruned here already.
			target.HighestCommitCert = local.HighestCommitCert
		}
		e.syncTo(ctx, &target, author)
	}
	if tcAhead {
		tc := *si.HighestTC
		e.highestTC = &tc
	}
	e.advanceRound(ctx)
	return true
}

// syncTo calls the syncer with the round timeout as deadline.
func (e *Engine) syncTo(ctx context.Context, si *chain.SyncInfo, from peer.ID) {
	sctx, cancel := context.WithTimeout(ctx, e.roundTimeout)
	defer cancel()
	e.log.Debug("sync", "peer", from, "commit_round", si.CommitRound(), "hqc_round", si.HighestQC.Round())
	if err := e.syncer.SyncTo(sctx, si, from); err != nil && ctx.Err() == nil {
		e.log.Debug("sync failed", "peer", from, "err", err)
	}
}

// insertQC inserts a verified qc: directly when its block is in the tree,
// through the syncer (fetching the block from from) otherwise. A QC at or
// below the root, or below the highest commit cert on an unknown branch, is
// of no use and ignored.
func (e *Engine) insertQC(ctx context.Context, qc chain.QuorumCert, from peer.ID) {
	if qc.Round() <= e.store.Root().Info.Round {
		return
	}
	if e.store.BlockExists(qc.CertifiedBlock().ID) {
		if err := e.store.InsertQC(qc); err != nil {
			e.log.Error("cannot insert QC", "round", qc.Round(), "block_id", qc.CertifiedBlock().ID.Short(), "err", err)
		}
		return
	}
	hcc := e.store.HighestCommitCert()
	if qc.Round() < hcc.Round() {
		return
	}
	e.syncTo(ctx, &chain.SyncInfo{HighestCommitCert: hcc, HighestQC: qc}, from)
}

// onLocalTimeout handles the round timer: the first time in a round the
// validator records the timeout in its safety data (it will not vote in
// this round any more), then it broadcasts its signed timeout (again at
// every further expiry, so that lost timeouts are made up for) and counts
// it towards a TC.
func (e *Engine) onLocalTimeout(ctx context.Context) {
	// A QC that reached the store by another path (the node's sync worker)
	// ends the round instead of a timeout.
	before := e.round
	if e.advanceRound(ctx); e.round != before {
		return
	}
	r := e.round
	e.timer.Reset(e.roundTimeout)
	if e.sd.HighestTimeoutRound < r || e.sd.LastVotedRound < r {
		sd := e.sd
		sd.HighestTimeoutRound = max(sd.HighestTimeoutRound, r)
		sd.LastVotedRound = max(sd.LastVotedRound, r)
		if err := e.safety.SaveSafetyData(sd); err != nil {
			e.log.Error("cannot save safety data; not timing out", "round", r, "err", err)
			return
		}
		e.sd = sd
		e.timeoutsSeen++
		e.log.Debug("round timed out", "round", r, "timeout", e.roundTimeout)
	}
	si := e.syncInfo()
	sig := e.signer.SignTimeout(e.epoch, r)
	e.net.Broadcast(&protocol.ConsensusMsg{Timeout: &protocol.TimeoutMsg{
		Epoch: e.epoch, Round: r, Signature: sig, SyncInfo: si,
	}})
	// The vote of this round, if any, goes to every validator: when the
	// next leader is down, any of them can form the QC, and the chain still
	// grows 3-chains that commit.
	if lv := e.sd.LastVote; lv != nil && lv.VoteData.Proposed.Round == r {
		msg := &protocol.VoteMsg{Vote: *lv, SyncInfo: si}
		for _, id := range e.vs.IDs() {
			if id != e.self {
				e.net.SendVote(id, msg)
			}
		}
		e.selfVotes = append(e.selfVotes, msg)
	}
	e.addTimeout(ctx, r, sig)
}

// onTimeoutMsg handles another validator's timeout: verified, its SyncInfo
// processed, then counted towards a TC if it is for the current round.
func (e *Engine) onTimeoutMsg(ctx context.Context, m *protocol.TimeoutMsg, from peer.ID) {
	author := m.Signature.Signer
	if m.Round < e.round || author == e.self {
		return
	}
	if err := e.verifier.VerifyTimeout(m.Epoch, m.Round, m.Signature); err != nil {
		e.log.Warn("invalid timeout", "peer", from, "round", m.Round, "err", err)
		return
	}
	if !e.processSyncInfo(ctx, &m.SyncInfo, author, nil) || m.Round != e.round {
		return
	}
	e.addTimeout(ctx, m.Round, m.Signature)
	// A validator whose timer has not fired yet joins once more than a third
	// of the voting power timed out: at least one honest validator did.
	if tr := e.timeoutAgg[m.Round]; tr != nil && tr.power*3 > e.vs.TotalPower() && e.sd.HighestTimeoutRound < m.Round {
		e.onLocalTimeout(ctx)
	}
}

// timeoutRound collects the timeouts of one round.
type timeoutRound struct {
	sigs  map[peer.ID]chain.Signature
	power uint64
	done  bool
}

// addTimeout counts a verified timeout signature of round r; on a quorum it
// forms the TC, adopts it and advances the round.
func (e *Engine) addTimeout(ctx context.Context, r uint64, sig chain.Signature) {
	tr := e.timeoutAgg[r]
	if tr == nil {
		tr = &timeoutRound{sigs: make(map[peer.ID]chain.Signature)}
		e.timeoutAgg[r] = tr
	}
	if _, dup := tr.sigs[sig.Signer]; dup || tr.done {
		return
	}
	tr.sigs[sig.Signer] = sig
	tr.power += e.vs.Power(sig.Signer)
	if !e.vs.HasQuorum(tr.power) {
		return
	}
	tr.done = true
	tc := &chain.TimeoutCert{Epoch: e.epoch, Round: r, Signatures: sortedSigs(tr.sigs)}
	if tc.Round > e.highestTCRound() {
		e.highestTC = tc
	}
	e.log.Debug("timeout certificate", "round", r)
	e.advanceRound(ctx)
}

// sortedSigs returns the signatures of m sorted by signer.
func sortedSigs(m map[peer.ID]chain.Signature) []chain.Signature {
	out := make([]chain.Signature, 0, len(m))
	for _, s := range m {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b chain.Signature) int { return bytes.Compare([]byte(a.Signer), []byte(b.Signer)) })
	return out
}
