// Package consensus implements LibraBFT (chained HotStuff with the 3-chain
// commit rule): leader election, proposals, votes, quorum certificates, a
// pacemaker with timeouts and timeout certificates, and persisted safety
// rules. When a message carries a SyncInfo ahead of the local one, it calls
// the syncer to catch up before processing the message.
//
// # The event loop
//
// One goroutine, the one running [Engine.Run], owns the consensus state. The
// network hands messages to [Engine.HandleProposal], [Engine.HandleVote] and
// [Engine.HandleTimeout] (or [Engine.HandleMsg]), which queue them on
// bounded channels and never block: a message that finds its queue full is
// dropped and counted. The engine sends through a small [Network]; it reads
// and writes the chain through the shared block store (which commits
// through the ledger), persists its safety data through [SafetyStorage], and
// catches up through a [Syncer]. Each turn of the loop handles one event:
//
//	for ctx is not done {
//		select {
//		case proposal:  verify; process its SyncInfo; insert the block's QC;
//		                if the block is for the current round: execute and
//		                insert it, vote if the safety rules allow
//		case vote:      verify; process its SyncInfo; count it; on a quorum:
//		                build the QC, insert it (commits by the 3-chain rule),
//		                advance the round
//		case timeout:   verify; process its SyncInfo; count it; on a quorum:
//		                build the TC, advance the round
//		case round timer: time out the current round
//		}
//	}
//
// A node's own vote, when it is the next leader, is queued inside the loop
// and handled like the others (without network, without verification).
//
// Processing a SyncInfo: when it is ahead of the local state — a higher
// commit round, or a higher highest QC or TC round — it is verified (a
// message with an invalid SyncInfo is dropped whole), then the engine
// catches up: if the blocks its certificates certify are known, the QCs are
// inserted directly; otherwise the engine calls Syncer.SyncTo with the
// message's author (the signer inside the message, never the network
// sender) as the preferred peer and the current round timeout as deadline.
// A higher TC is adopted. Then the round advances if it can.
//
// Every message is verified against the validator set before use
// (chain.Verifier: VerifyBlock, VerifyVote, VerifyTimeout, VerifySyncInfo);
// a proposal must also come from the leader of its round.
//
// # Rounds and the pacemaker
//
// The current round is always max(highest QC round, highest TC round) + 1;
// it advances only when a QC or TC is learned (formed here, received in a
// block or a SyncInfo, or fetched by the syncer). Entering round r:
//
//   - arms the round timer with RoundTimeout·2^k, at most MaxRoundTimeout,
//     where k = r - 1 - (highest QC round) counts the rounds since the last
//     QC;
//   - if this validator leads r ([LeaderElection]; [RoundRobin] by default),
//     proposes: a block of round r extending the highest certified block,
//     carrying the highest QC, with up to MaxBlockTxs / MaxBlockBytes of
//     transactions from the [Mempool], timestamped max(now in µs, parent's
//     timestamp + 1); the block is inserted (persisted) before it is
//     broadcast with this node's SyncInfo, and the leader votes for it.
//
// When the timer fires in round r, the validator records the timeout in its
// safety data (so it never votes in r afterwards), then broadcasts a signed
// timeout for r with its SyncInfo, and re-sends its vote of round r, if it
// cast one, to every validator: if the next leader is down, any validator
// can still form that QC, and 3-chains keep forming and committing. The
// timer is re-armed, and a round that stays stuck re-sends both every round
// timeout. A quorum of timeouts for r forms a timeout certificate
// (signatures sorted by signer), which moves everyone to r + 1 and travels
// in SyncInfo.HighestTC. A validator that sees timeouts for its current
// round from more than a third of the voting power times out at once.
//
// # Safety rules
//
// The safety data (store.SafetyData) are saved through SafetyStorage before
// a vote or timeout leaves the node; if the save fails nothing is sent.
//
//  1. Never vote twice in a round: a vote for a block of round r requires
//     r > LastVotedRound; voting sets LastVotedRound = r, and timing out in
//     round r sets LastVotedRound = max(LastVotedRound, r).
//  2. Locking: vote only for a block B whose QC's round is at least
//     PreferredRound; voting sets PreferredRound = max(PreferredRound,
//     B.QC().ParentBlock().Round), the head of the 2-chain B extends.
//  3. Only the current round's block is voted for, and only a block the
//     node executed (the vote carries the executed state).
//  4. The vote's ledger info commits B's grandparent when B, its parent and
//     its grandparent have consecutive rounds (chain.CommitInfo), so a
//     quorum certificate on a 3-chain is a commit certificate.
//
// A vote for round r goes to the leader of r + 1, which collects verified
// votes per (round, ledger info hash) — an author's second vote in a round
// is ignored — and, on a quorum of voting power, builds the QC with its
// signatures sorted by signer and inserts it into the block store, which
// commits by the 3-chain rule through the ledger and storage.
//
// A restarted validator builds a new Engine over the same store: New reads
// the safety data, so it never votes again in a round at or below its
// LastVotedRound, and it catches up from the SyncInfo of the first messages
// it receives.
//
// # Usage
//
//	eng, err := consensus.New(consensus.Components{
//		Signer: signer, Verifier: verifier, Store: blockStore,
//		Syncer: syncManager, Network: net, Safety: st, Mempool: pool,
//	}, consensus.DefaultConfig())
//	go eng.Run(ctx)
//	// network handlers: eng.HandleMsg(msg, from), eng.HandleVote(vote, from)
//	// monitoring: eng.Status()
//
// Logs: Debug per round, proposal, certificate and sync; Info every
// CommitLogInterval committed rounds; Warn for invalid messages (the
// sender's fault); Error for local faults (storage).
package consensus
