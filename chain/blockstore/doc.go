// Package blockstore ties the in-memory block tree, the ledger (the state
// computer) and persistent storage into the block store that consensus and
// the syncer share, as Libra's BlockStore does.
//
// Every insertion follows the same order, so that a node killed at any
// instant restarts from its store into a consistent state (DESIGN.md §4):
//
//  1. execute the block through the ledger (speculatively, in memory);
//  2. persist the block or QC (Persister.SaveTree), fsync'd;
//  3. insert it into the tree;
//  4. if a QC commits a block past the root: commit the path through the
//     ledger (durable), then prune the tree and delete the pruned forks
//     from storage.
//
// A crash between 2 and 3 loses nothing (recovery re-executes stored
// blocks); a crash between the ledger commit and the prune leaves stale
// blocks that recovery reports and prunes. The ledger archives committed
// blocks with their commit (ledger.Batch.Blocks), so the node still serves
// them to peers that catch up block by block.
//
// A Store is safe for concurrent use.
package blockstore
