// Package syncer catches a lagging node up to the certified chain from its
// peers. It owns the sync manager, the block retriever and the state-sync
// driver: given a SyncInfo ahead of the local state, it fast-forwards to the
// committed 3-chain when far behind (persisting it before state sync starts),
// retrieves missing blocks and quorum certificates from the signers of a QC,
// verifies everything against the validator set, and inserts it oldest first.
//
// It reaches the network through a small interface it defines, and is tested
// with in-memory fakes. It never imports package consensus or package node.
package syncer
