package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/testnet"
)

const txUsage = `tx HASH --home DIR [--api URL]

Fetches the committed transaction whose tx_hash (the hash POST /tx answered)
is HASH from a running node's GET /tx/HASH, and verifies its proof against
the genesis of the home: the ledger info's quorum of signatures, the
transaction's hash, and its RFC 6962 audit path to the signed executed
state id (docs/protocol.md section 11). The node is the home's unless --api
names another; either way nothing it says is trusted before the check.
Exits with status 1 if the node does not have the transaction or its proof
does not verify.
`

func cmdTx(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tx", txUsage, stderr)
	hashArg, home, api, err := parseProofArgs(fs, args, "HASH")
	if err != nil {
		return err
	}
	h, err := chain.ParseHash(hashArg)
	if err != nil {
		return usageError(fs, "HASH must be 64 hex digits")
	}
	hm, url, err := homeAPI(home, api)
	if err != nil {
		return err
	}
	p, err := testnet.FetchTxProof(ctx, url, hm.Genesis, h)
	if err != nil {
		return err
	}
	info := p.LedgerInfo.LedgerInfo.CommitInfo
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "tx_hash\t%s\n", h)
	fmt.Fprintf(tw, "version\t%d\n", p.Version)
	fmt.Fprintf(tw, "verified\tin the ledger of version %d, committed at round %d (block %s), signed by %d of %d validators\n",
		info.Version, info.Round, info.ID.Short(), len(p.LedgerInfo.Signatures), len(hm.Genesis.Validators.Validators()))
	if k, val, err := chain.DecodeKV(p.Tx); err == nil {
		fmt.Fprintf(tw, "writes\tkey %q = value %q\n", k, val)
	}
	fmt.Fprintf(tw, "tx\t%x\n", p.Tx)
	return tw.Flush()
}

// parseProofArgs parses the arguments of a command that fetches and
// verifies a proof from a node: its one positional argument name first,
// then --home (required: its genesis verifies the proof), --api and the
// flags the command declared on fs.
func parseProofArgs(fs *flag.FlagSet, args []string, name string) (arg, home, api string, err error) {
	h := fs.String("home", "", "a home of the chain: its genesis verifies the proof, its config names the API")
	a := fs.String("api", "", "the API base URL of the node to ask, e.g. http://127.0.0.1:8080 (default: the home's)")
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		arg, args = args[0], args[1:]
	}
	if err := parse(fs, args); err != nil {
		return "", "", "", err
	}
	if arg == "" {
		return "", "", "", usageError(fs, "%s is required", name)
	}
	if *h == "" {
		return "", "", "", usageError(fs, "--home is required: its genesis verifies the proof")
	}
	return arg, *h, *a, nil
}

// homeAPI loads the home dir and returns it with the API base URL to ask:
// api if not empty, else the home's.
func homeAPI(dir, api string) (*testnet.Home, string, error) {
	hm, err := testnet.LoadHome(dir)
	if err != nil {
		return nil, "", err
	}
	if api == "" {
		if hm.Config.API == "" {
			return nil, "", fmt.Errorf("the config in %s has no api address; give --api", dir)
		}
		api = hm.Config.API
	}
	if !strings.Contains(api, "://") {
		api = "http://" + api
	}
	return hm, api, nil
}
