package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/p2pnode/p2pnode/node"
	"github.com/p2pnode/p2pnode/protocol"
	"github.com/p2pnode/p2pnode/testnet"
)

// version is the release version; set it with
// -ldflags "-X main.version=v1.2.3". Empty, the main module's version is
// used ("devel" in a checkout).
var version = ""

const versionUsage = `version

Prints the binary's version, commit, Go version and the versions of the
protocols it speaks.
`

func cmdVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", versionUsage, stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	b := node.ReadBuildInfo(version)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "p2pnode\t%s\n", b.Version)
	fmt.Fprintf(tw, "commit\t%s\n", b.Commit)
	fmt.Fprintf(tw, "go\t%s\n", b.GoVersion)
	const chain = "<chain_id>"
	for i, p := range []string{
		string(protocol.BlocksID(chain)), string(protocol.CommittedID(chain)), string(protocol.ChunksID(chain)),
		string(protocol.VoteID(chain)), protocol.SyncInfoTopic(chain), protocol.ConsensusTopic(chain), protocol.TxTopic(chain),
	} {
		k := ""
		if i == 0 {
			k = "protocols"
		}
		fmt.Fprintf(tw, "%s\t%s\n", k, p)
	}
	return tw.Flush()
}

const logsUsage = `logs (--admin URL | --home DIR) [--level LEVEL] [--subsystem NAME ...]

Prints a running node's log lines as they are logged, one JSON object per
line, until interrupted. The node is found by its admin API's URL
(http://127.0.0.1:8081) or by its home, whose config names the admin
address. The stream carries the lines the node logs at its current levels
(raise them with 'p2pnode log-level'), filtered by --level and --subsystem.
A reader too slow to keep up loses lines: a line {"msg":"log lines
dropped","dropped":N} stands for them.
`

func cmdLogs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("logs", logsUsage, stderr)
	admin := adminFlags(fs)
	level := fs.String("level", "", "lowest level streamed: debug, info, warn or error (default: every line)")
	var subs stringList
	fs.Var(&subs, "subsystem", "stream only this logger, e.g. p2pnode/syncer (repeatable, or comma-separated)")
	if err := parse(fs, args); err != nil {
		return err
	}
	base, err := admin.url(fs)
	if err != nil {
		return err
	}
	if _, err := node.ParseLogFilter(*level, subs); err != nil {
		return usageError(fs, "%v", err)
	}
	q := url.Values{}
	if *level != "" {
		q.Set("level", *level)
	}
	for _, s := range subs {
		q.Add("subsystem", s)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/admin/logs?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("GET /admin/logs: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if _, err := fmt.Fprintf(stdout, "%s\n", sc.Bytes()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

const logLevelUsage = `log-level (--admin URL | --home DIR) [SUBSYSTEM LEVEL]

Sets the log level of a running node's subsystem (e.g. p2pnode/syncer, or
"*" for all) to LEVEL: debug, info, warn or error. Without arguments it
prints every subsystem's level. The node is found as 'p2pnode logs' finds
it.
`

func cmdLogLevel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("log-level", logLevelUsage, stderr)
	admin := adminFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if n := fs.NArg(); n != 0 && n != 2 {
		return usageError(fs, "give SUBSYSTEM and LEVEL, or nothing to list the levels")
	}
	base, err := admin.url(fs)
	if err != nil {
		return err
	}
	if fs.NArg() == 0 {
		var levels map[string]string
		if err := adminRequest(ctx, http.MethodGet, base+"/admin/log-level", &levels); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		for _, k := range slices.Sorted(maps.Keys(levels)) {
			name := k
			if name == "" {
				name = "(default)"
			}
			fmt.Fprintf(tw, "%s\t%s\n", name, levels[k])
		}
		return tw.Flush()
	}
	q := url.Values{"subsystem": {fs.Arg(0)}, "level": {fs.Arg(1)}}
	var out map[string]string
	if err := adminRequest(ctx, http.MethodPost, base+"/admin/log-level?"+q.Encode(), &out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s\n", out["subsystem"], out["level"])
	return nil
}

// adminTarget are the flags that find a node's admin API.
type adminTarget struct{ admin, home *string }

func adminFlags(fs *flag.FlagSet) adminTarget {
	return adminTarget{
		admin: fs.String("admin", "", "the node's admin API base URL, e.g. http://127.0.0.1:8081"),
		home:  fs.String("home", "", "the node's home directory (its config names the admin address)"),
	}
}

// url returns the admin API's base URL from the flags.
func (a adminTarget) url(fs *flag.FlagSet) (string, error) {
	u := *a.admin
	switch {
	case u != "" && *a.home != "":
		return "", usageError(fs, "give --admin or --home, not both")
	case *a.home != "":
		h, err := testnet.LoadHome(*a.home)
		if err != nil {
			return "", err
		}
		if h.Config.Admin == "" {
			return "", fmt.Errorf("the config in %s has no admin address", *a.home)
		}
		u = h.Config.Admin
	case u == "":
		return "", usageError(fs, "--admin or --home is required")
	}
	if !strings.Contains(u, "://") {
		u = "http://" + u
	}
	return strings.TrimRight(u, "/"), nil
}

// adminRequest sends a request without body and decodes the JSON answer
// into out; a status other than 200 is an error carrying the answer.
func adminRequest(ctx context.Context, method, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, req.URL.Path, resp.Status, strings.TrimSpace(string(body)))
	}
	return json.Unmarshal(body, out)
}
