// Package syncer catches a lagging node up to the certified chain from its
// peers, as Libra's SyncManager and BlockRetriever do, and further.
//
// Given a SyncInfo ahead of the local state, [Manager.SyncTo]:
//
//  1. fast-forwards when the committed block is far ahead (more than
//     Config.FastForwardRounds): fetches the committed 3-chain, persists it
//     before anything else, state-syncs the ledger in chunks verified against
//     the signed ledger info (several peers, a bounded window in flight), and
//     rebuilds the block tree on the new root;
//  2. otherwise, when the commit is more than Config.ForwardMinGap rounds
//     ahead, fetches the committed blocks forward in round windows from
//     several peers at once, verifying each window on arrival and inserting
//     it as soon as it links, so memory stays bounded by the windows;
//  3. then fetches the highest commit cert's and highest QC's missing
//     ancestors, walking back by id (the message's author first, then the
//     QC's signers), and inserts them oldest first.
//
// Every response is verified against the validator set before use; a peer
// that sends invalid data is penalised in [Scores] and not asked again
// during that sync. A failed sync leaves the local state consistent and the
// next one resumes where it stopped. [SeedConfig] gives the seed's
// behaviour exactly: one block per request, one peer at a time.
//
// The package reaches the network through the small [Network] interface it
// defines; [ServeBlocks], [ServeCommitted] and [ServeChunk] are the server
// side. It is tested with the in-memory fakes of package syncertest. It never
// imports package consensus or package node.
package syncer
