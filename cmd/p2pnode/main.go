// Command p2pnode runs a node of a LibraBFT-style BFT chain over libp2p.
//
// Planned subcommands are init, run, testnet, status and bench. None of them
// is available in this build yet: each prints a message and exits with
// status 2.
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `Usage: p2pnode <command> [flags]

A libp2p node for a LibraBFT-style (chained HotStuff) BFT chain.

Commands (planned; not available in this build yet):
  init      create a node home: keys, config and genesis
  run       run a validator or full node
  testnet   run a local 4-validator testnet plus a late-joining full node
  status    print the status of a running node
  bench     run sync benchmarks

Run 'p2pnode help' to print this text.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line args (without the program name), writing to
// stdout and stderr, and returns the process exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch cmd := args[0]; cmd {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "p2pnode: %s: not available in this build yet\n", cmd)
		return 2
	}
}
