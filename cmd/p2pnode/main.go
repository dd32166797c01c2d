// Command p2pnode runs a node of a LibraBFT-style BFT chain over libp2p,
// and local testnets of such nodes.
//
// Subcommands:
//
//	p2pnode init     create the homes of a testnet: keys, genesis, configs
//	p2pnode run      run one node from its home
//	p2pnode testnet  run a local multi-process testnet
//	p2pnode status   print a running node's status
//	p2pnode logs     tail a running node's log lines
//	p2pnode log-level  show or change a running node's log levels
//	p2pnode version  print the version, commit and protocol versions
//	p2pnode tx       fetch a committed transaction and verify its proof
//	p2pnode bench    measure sync speed against the seed's design and the machine's ceiling
//
// Run `p2pnode <command> --help` for a command's flags. Logs go to stderr
// through go-log: GOLOG_LOG_LEVEL sets levels per subsystem
// (e.g. "info,p2pnode/syncer=debug") and GOLOG_LOG_FMT=json switches to
// JSON lines; libp2p's own logs go through the same handler.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usage = `Usage: p2pnode <command> [flags]

A libp2p node for a LibraBFT-style (chained HotStuff) BFT chain.

Commands:
  init      create a testnet's homes: keys, a shared genesis and configs
  run       run one node (validator or full node) from its home
  testnet   run a local testnet: 4 validators and a full node that joins late
  status    print a summary of a running node's status
  logs      tail a running node's log lines (JSON) from its admin API
  log-level show or set a running node's log levels: log-level SUBSYSTEM LEVEL
  version   print the version, commit, Go version and protocol versions
  tx        fetch a committed transaction by its tx_hash and verify its proof
  state     fetch a state key's committed value and verify its proof
  bench     measure sync speed: bench sync [flags]

Run 'p2pnode <command> --help' for the command's flags.

Logs go to stderr. GOLOG_LOG_LEVEL sets levels per subsystem, e.g.
"info,p2pnode/syncer=debug" (unset: p2pnode's subsystems at info, libp2p's
at error); GOLOG_LOG_FMT sets the format: color, nocolor or json.
`

// errUsage marks a command-line error: the command printed its usage and
// exits with status 2.
var errUsage = errors.New("p2pnode: usage")

func main() {
	setupLogging()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line args (without the program name) until
// ctx ends, writing to stdout and stderr, and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	case "init":
		err = cmdInit(rest, stdout, stderr)
	case "run":
		err = cmdRun(ctx, rest, stderr)
	case "testnet":
		err = cmdTestnet(ctx, rest, stdout, stderr)
	case "status":
		err = cmdStatus(ctx, rest, stdout, stderr)
	case "bench":
		err = cmdBench(ctx, rest, stdout, stderr)
	case "logs":
		err = cmdLogs(ctx, rest, stdout, stderr)
	case "log-level":
		err = cmdLogLevel(ctx, rest, stdout, stderr)
	case "version":
		err = cmdVersion(rest, stdout, stderr)
	case "tx":
		err = cmdTx(ctx, rest, stdout, stderr)
	case "state":
		err = cmdState(ctx, rest, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "p2pnode: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "p2pnode %s: %v\n", args[0], err)
		return 1
	}
}

// newFlagSet returns a flag set for the command name that prints its usage
// (head, then the flags) to stderr.
func newFlagSet(name, head string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: p2pnode %s\n\n", strings.TrimSpace(head))
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args with fs, mapping errors to errUsage (or flag.ErrHelp)
// and refusing positional arguments.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	return nil
}

// usageError prints msg and fs's usage and returns errUsage.
func usageError(fs *flag.FlagSet, format string, args ...any) error {
	fmt.Fprintf(fs.Output(), format+"\n", args...)
	fs.Usage()
	return errUsage
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(s string) error {
	*l = append(*l, s)
	return nil
}
