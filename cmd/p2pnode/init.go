package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/p2pnode/p2pnode/testnet"
)

const initUsage = `init --home DIR --validators N [--fullnodes M] [--chain-id ID]

Creates a testnet in DIR, which must not exist or be empty: a key for every
node, one genesis whose validators are the first N nodes, and a home per
node, DIR/validator0 .. DIR/fullnode0 .., each runnable as it stands with
'p2pnode run --home DIR/<name>' (loopback addresses with free ports,
bootstrap peers and API ports filled in). DIR/testnet.json lists the nodes.
`

func cmdInit(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("init", initUsage, stderr)
	home := fs.String("home", "", "directory to create the testnet in (required)")
	validators := fs.Int("validators", 4, "number of validators")
	fullnodes := fs.Int("fullnodes", 0, "number of full nodes")
	chainID := fs.String("chain-id", testnet.DefaultChainID, "chain id: 1 to 64 characters of [A-Za-z0-9._-]")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *home == "" {
		return usageError(fs, "--home is required")
	}
	if err := checkEmptyDir(*home); err != nil {
		return err
	}
	m := testnet.DefaultManifest(*validators, *fullnodes, 0)
	net, err := testnet.Init(*home, testnet.Options{
		Validators: *validators, Fullnodes: *fullnodes, ChainID: *chainID, Config: m.Config,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created a testnet of chain %s in %s:\n", net.ChainID, *home)
	for _, n := range net.Nodes {
		fmt.Fprintf(stdout, "  %-11s %-9s %s  p2p %s  api %s\n", n.Name, n.Role, n.PeerID, n.Multiaddrs[0], n.API)
	}
	fmt.Fprintf(stdout, "start each node with: p2pnode run --home %s\n", filepath.Join(*home, "<name>"))
	return nil
}

// checkEmptyDir fails if dir exists and is not an empty directory.
func checkEmptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return err
	case len(entries) > 0:
		return fmt.Errorf("%s is not empty; choose a new directory", dir)
	}
	return nil
}
