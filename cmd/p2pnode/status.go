package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/p2pnode/p2pnode/node"
	"github.com/p2pnode/p2pnode/testnet"
)

const statusUsage = `status [--api URL | --home DIR]

Prints a summary of a running node's GET /status. The node is found by its
API's URL (http://127.0.0.1:8080) or by its home, whose config names the
API's address.
`

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", statusUsage, stderr)
	api := fs.String("api", "", "the node's API base URL, e.g. http://127.0.0.1:8080")
	home := fs.String("home", "", "the node's home directory (its config names the API address)")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *api != "" && *home != "":
		return usageError(fs, "give --api or --home, not both")
	case *home != "":
		h, err := testnet.LoadHome(*home)
		if err != nil {
			return err
		}
		if h.Config.API == "" {
			return fmt.Errorf("the config in %s has no api address", *home)
		}
		*api = "http://" + h.Config.API
	case *api == "":
		return usageError(fs, "--api or --home is required")
	}
	if !strings.Contains(*api, "://") {
		*api = "http://" + *api
	}
	s, err := testnet.FetchStatus(ctx, *api)
	if err != nil {
		return err
	}
	printStatus(stdout, &s)
	return nil
}

// printStatus writes s as an aligned list.
func printStatus(w io.Writer, s *node.Status) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...) }
	row("chain", "%s", s.ChainID)
	row("peer id", "%s", s.PeerID)
	row("role", "%s", s.Role)
	row("round", "%d (highest QC round %d)", s.Round, s.HighestQCRound)
	row("committed", "round %d, version %d, block %s", s.CommittedRound, s.CommittedVersion, s.CommittedBlockID)
	row("root round", "%d", s.RootRound)
	row("peers", "%d", s.Peers)
	row("syncing", "%v", s.Syncing)
	row("best peer round", "%d (%d rounds behind, catching up %v)", s.BestPeerRound, s.Distance, s.CatchingUp)
	row("earliest round", "%d", s.EarliestRound)
	row("version", "%s", s.Version)
	row("mempool", "%d txs", s.MempoolTxs)
	for i, a := range s.ListenAddrs {
		k := ""
		if i == 0 {
			k = "listening on"
		}
		row(k, "%s", a)
	}
	if c := s.Consensus; c != nil {
		row("consensus", "last voted round %d, highest TC round %d", c.LastVotedRound, c.HighestTCRound)
		row("", "%d proposals, %d timeouts, %d messages dropped", c.Proposals, c.Timeouts, c.Dropped)
	}
	_ = tw.Flush()
}
