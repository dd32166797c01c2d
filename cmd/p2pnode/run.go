package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/p2pnode/p2pnode/node"
	"github.com/p2pnode/p2pnode/testnet"
)

const runUsage = `run --home DIR [--listen MULTIADDR ...] [--bootstrap MULTIADDR ...] [--api ADDR] [--admin ADDR]

Runs one node from its home DIR (node.key, genesis.json, config.json, as
'p2pnode init' writes them); the store, store.db, lives there too. The node
is a validator if its key is in the genesis validator set and a full node
otherwise. Flags override the config file. SIGINT or SIGTERM stops it
cleanly.
`

func cmdRun(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("run", runUsage, stderr)
	home := fs.String("home", "", "the node's home directory (required)")
	var listen, bootstrap stringList
	fs.Var(&listen, "listen", "multiaddr to listen on, e.g. /ip4/0.0.0.0/tcp/4001 (repeatable; replaces config's listen)")
	fs.Var(&bootstrap, "bootstrap", "multiaddr of a peer ending in /p2p/<peer id> (repeatable; replaces config's bootstrap)")
	api := fs.String("api", "", "HTTP API listen address host:port (overrides config's api)")
	admin := fs.String("admin", "", "admin API listen address, loopback only (overrides config's admin)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *home == "" {
		return usageError(fs, "--home is required")
	}
	h, err := testnet.LoadHome(*home)
	if err != nil {
		return err
	}
	if len(listen) > 0 {
		h.Config.Listen = listen
	}
	if len(bootstrap) > 0 {
		h.Config.Bootstrap = bootstrap
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["api"] {
		h.Config.API = *api
	}
	if set["admin"] {
		h.Config.Admin = *admin
	}
	cfg, err := h.NodeConfig()
	if err != nil {
		return err
	}
	cfg.Logger = slog.Default()
	cfg.Version = version
	// The log hub streams every line to the admin API; setupLogging puts
	// it in front of go-log for the whole process (libp2p included).
	hub := logHub(slog.Default().Handler())
	if hub == nil {
		hub = node.NewLogHub(node.DefaultLogStreamLines)
		cfg.Logger = slog.New(hub.Handler(slog.Default().Handler()))
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := cfg.Logger.With("logger", "p2pnode/cmd")

	// The node serves its HTTP API itself (and stops it first when it
	// stops); the admin API, which drives the connection gater for
	// testnets and serves the log stream, log levels and profiles, is the
	// command's and listens on loopback only.
	var adminLn net.Listener
	if h.Config.Admin != "" {
		if adminLn, err = listenLoopback(h.Config.Admin); err != nil {
			return err
		}
		defer adminLn.Close()
	}
	n, err := node.New(cfg)
	if err != nil {
		return err
	}
	var servers []*http.Server
	// Log streams end when adminCtx does, at shutdown.
	adminCtx, stopAdmin := context.WithCancel(context.Background())
	defer stopAdmin()
	if adminLn != nil {
		srv := &http.Server{
			Handler:           node.NewAdminHandler(node.AdminConfig{Gater: n.Gater(), Logs: hub, Levels: goLogLevels{}}),
			ReadHeaderTimeout: 5 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
			BaseContext:       func(net.Listener) context.Context { return adminCtx },
		}
		servers = append(servers, srv)
		go func() { _ = srv.Serve(adminLn) }()
		log.Info("admin api listening", "addr", adminLn.Addr().String())
	}
	nodeCtx, stopNode := context.WithCancel(context.Background())
	defer stopNode()
	go func() {
		select {
		case <-ctx.Done():
		case <-nodeCtx.Done():
		}
		stopAdmin()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, srv := range servers {
			if err := srv.Shutdown(sctx); err != nil {
				_ = srv.Close()
			}
		}
		stopNode()
	}()

	role := "fullnode"
	if n.IsValidator() {
		role = "validator"
	}
	log.Info("starting node", "name", h.Config.Name, "peer", n.ID(), "role", role, "chain_id", cfg.Genesis.ChainID, "home", *home)
	if err := n.Run(nodeCtx); err != nil {
		return err
	}
	log.Info("node shut down cleanly", "name", h.Config.Name)
	return nil
}

// listenLoopback listens on addr, which must be a loopback address: the
// admin API can cut the node off from its peers.
func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("admin address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("admin address %q: %w", addr, errNotLoopback)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	return ln, nil
}

// errNotLoopback: the admin API must listen on a loopback address.
var errNotLoopback = errors.New("not a loopback address")
