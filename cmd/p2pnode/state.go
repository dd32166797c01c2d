package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/p2pnode/p2pnode/chain"
	"github.com/p2pnode/p2pnode/testnet"
)

const stateUsage = `state KEY --home DIR [--api URL]

Fetches the value of the state key KEY (as the key/value transactions write
it; --hex reads KEY as hex) in a running node's committed state from its
GET /state, and verifies the proof against the genesis of the home: the
ledger info's quorum of signatures, and the state tree's proof of the key's
value, or of its absence, to the signed state root (docs/protocol.md
section 12). The node is the home's unless --api names another; nothing it
says is trusted before the check. Exits with status 1 if the node has no
settled state yet or the proof does not verify.
`

func cmdState(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("state", stateUsage, stderr)
	isHex := fs.Bool("hex", false, "KEY is hex")
	keyArg, home, api, err := parseProofArgs(fs, args, "KEY")
	if err != nil {
		return err
	}
	key := []byte(keyArg)
	if *isHex {
		if key, err = hex.DecodeString(keyArg); err != nil || len(key) == 0 {
			return usageError(fs, "KEY is not hex")
		}
	}
	if len(key) > chain.MaxKeySize {
		return usageError(fs, fmt.Sprintf("KEY has %d bytes, at most %d", len(key), chain.MaxKeySize))
	}
	hm, url, err := homeAPI(home, api)
	if err != nil {
		return err
	}
	p, err := testnet.FetchStateProof(ctx, url, hm.Genesis, key)
	if err != nil {
		return err
	}
	info := p.LedgerInfo.LedgerInfo.CommitInfo
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "key\t%q\n", key)
	if p.Present {
		fmt.Fprintf(tw, "value\t%q\n", p.Value)
	} else {
		fmt.Fprintf(tw, "value\tnone: the key is not set\n")
	}
	fmt.Fprintf(tw, "verified\tin the state of version %d (root %s), committed at round %d (block %s), signed by %d of %d validators\n",
		info.Version, info.StateRoot.Short(), info.Round, info.ID.Short(), len(p.LedgerInfo.Signatures), len(hm.Genesis.Validators.Validators()))
	return tw.Flush()
}
