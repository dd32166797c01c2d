// Package testnet runs p2pnode networks of real processes on one machine,
// and owns the files of a node's home.
//
// A home (Home, LoadHome, WriteHome) holds a node's key (node.key), the
// chain's genesis (genesis.json, a GenesisDoc) and its configuration
// (config.json, a HomeConfig); Home.NodeConfig turns them into a
// node.Config. Init creates a whole testnet: one key per node, one genesis,
// one home per node with loopback addresses and bootstrap peers filled in,
// and testnet.json listing the nodes (a Network).
//
// A Runner runs the nodes as processes of the p2pnode binary and perturbs
// them — start, kill (SIGKILL), pause (SIGSTOP), resume (SIGCONT),
// partition and heal (through each node's admin API) — and the checks
// look at them from outside, over their HTTP API only: Converge (every live
// node reaches the same committed round and goes on) and ComparePrefixes
// (no two nodes committed different blocks at one round). A Manifest
// describes a testnet and a scenario of stages, after cometbft's e2e
// runner:
//
//	r, err := testnet.Setup(dir, m, testnet.RunnerConfig{Binary: bin}) // setup
//	defer r.Close()                                                   // every process killed, always
//	err = r.StartNetwork(ctx, m)                                      // start (late starts scheduled)
//	err = r.RunStages(ctx, m)                                         // perturb, wait, check; per stage
//	err = r.Shutdown(10 * time.Second)                                // stop: SIGTERM, then SIGKILL
//
// The end-to-end tests of this package build the binary once and run such
// scenarios; `p2pnode testnet` runs the default one (a full node that joins
// late and catches up by restoring a state snapshot) or a manifest file. Processes run only
// on Unix systems.
package testnet
