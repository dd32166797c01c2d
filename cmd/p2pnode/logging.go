package main

import (
	"context"
	"log/slog"
	"os"

	golog "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/gologshim"

	"github.com/p2pnode/p2pnode/node"
)

// setupLogging routes slog's default logger and libp2p's loggers through
// go-log, which reads GOLOG_LOG_LEVEL and GOLOG_LOG_FMT, and through a log
// hub that streams the lines to the admin API's readers (GET /admin/logs).
// Without GOLOG_LOG_LEVEL, p2pnode's own subsystems log at info and the
// others (libp2p) at error.
func setupLogging() {
	h := errorText{node.NewLogHub(node.DefaultLogStreamLines).Handler(golog.SlogHandler())}
	slog.SetDefault(slog.New(h))
	gologshim.SetDefaultHandler(h)
	if os.Getenv("GOLOG_LOG_LEVEL") == "" && os.Getenv("IPFS_LOGGING") == "" {
		for _, s := range subsystems() {
			_ = golog.SetLogLevel(s, "info")
		}
	}
}

// subsystems returns the loggers of p2pnode's components (the "logger"
// attribute each one carries).
func subsystems() []string {
	return []string{
		"p2pnode/cmd", "p2pnode/node", "p2pnode/syncer", "p2pnode/consensus", "p2pnode/store",
		"p2pnode/gossip", "p2pnode/server", "p2pnode/http", "p2pnode/mempool", "p2pnode/testnet",
	}
}

// errorText wraps go-log's slog handler so that an error value is logged as
// its message: the handler encodes values of kind Any by reflection, which
// writes most errors as {}.
type errorText struct{ slog.Handler }

// Handle passes r on with its error values turned into strings.
func (h errorText) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(errorAttr(a))
		return true
	})
	return h.Handler.Handle(ctx, out)
}

// WithAttrs converts the error values of attrs; the "logger" attribute
// reaches go-log unchanged, which selects the subsystem's level.
func (h errorText) WithAttrs(attrs []slog.Attr) slog.Handler {
	conv := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		conv[i] = errorAttr(a)
	}
	return errorText{h.Handler.WithAttrs(conv)}
}

// WithGroup keeps the wrapping.
func (h errorText) WithGroup(name string) slog.Handler { return errorText{h.Handler.WithGroup(name)} }

// errorAttr returns a with an error value replaced by its message, in
// groups too.
func errorAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindAny:
		if err, ok := v.Any().(error); ok && err != nil {
			return slog.String(a.Key, err.Error())
		}
	case slog.KindGroup:
		g := v.Group()
		conv := make([]any, len(g))
		for i, ga := range g {
			conv[i] = errorAttr(ga)
		}
		return slog.Group(a.Key, conv...)
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// logHub returns the hub setupLogging installed in front of h, or nil.
func logHub(h slog.Handler) *node.LogHub {
	if e, ok := h.(errorText); ok {
		h = e.Handler
	}
	return node.LogHubOf(h)
}

// goLogLevels are go-log's levels, which every logger of the process
// (libp2p's too) obeys.
type goLogLevels struct{}

// SetLevel sets subsystem's level; "*" sets them all.
func (goLogLevels) SetLevel(subsystem, level string) error {
	return golog.SetLogLevel(subsystem, level)
}

// Levels lists the subsystems' levels, the default under "".
func (goLogLevels) Levels() map[string]string { return golog.SubsystemLevelNames() }
