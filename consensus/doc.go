// Package consensus implements LibraBFT (chained HotStuff with the 3-chain
// commit rule): leader election, proposals, votes, quorum certificates, a
// pacemaker with timeouts and timeout certificates, and persisted safety
// rules. When a message carries a SyncInfo ahead of the local one, it calls
// package syncer to catch up before processing the message.
package consensus
