package node

import (
	"bufio"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"
)

// LogLevels reads and changes the process's log levels per subsystem.
// Package cmd/p2pnode implements it over go-log.
type LogLevels interface {
	// SetLevel sets subsystem's level ("debug", "info", "warn", "error");
	// subsystem "*" sets every subsystem's and the default.
	SetLevel(subsystem, level string) error
	// Levels returns every known subsystem's level; the default level is
	// under "".
	Levels() map[string]string
}

// AdminConfig is what the admin API serves.
type AdminConfig struct {
	// Gater is the node's connection gater; nil leaves out its routes.
	Gater *Gater
	// Logs streams the process's log lines; nil disables GET /admin/logs.
	Logs *LogHub
	// Levels changes log levels; nil disables /admin/log-level.
	Levels LogLevels
}

// NewAdminHandler returns the admin API: AdminHandler's routes and
//
//	GET  /admin/logs?level=L&subsystem=S    the log lines, live, as JSON lines
//	GET  /admin/log-level                   the log levels as a JSON object
//	POST /admin/log-level?subsystem=S&level=L  set a subsystem's level ("*" or "": all)
//	GET  /debug/pprof/...                   Go's profiles (net/http/pprof)
//
// Serve it on a loopback listener of its own: the profiles and the log
// lines are for the operator only. A log stream ends when the client goes
// away or the request's context ends (give the server a BaseContext that
// ends at shutdown), so serve it without a write timeout.
func NewAdminHandler(c AdminConfig) http.Handler {
	mux := http.NewServeMux()
	if c.Gater != nil {
		mux.Handle("/admin/", AdminHandler(c.Gater))
	}
	if c.Logs != nil {
		mux.Handle("GET /admin/logs", logStreamHandler(c.Logs))
	}
	if c.Levels != nil {
		mux.HandleFunc("GET /admin/log-level", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, c.Levels.Levels())
		})
		mux.HandleFunc("POST /admin/log-level", func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			sub, level := q.Get("subsystem"), strings.ToLower(q.Get("level"))
			if sub == "" {
				sub = "*"
			}
			if _, err := ParseLogFilter(level, nil); err != nil || level == "" {
				httpError(w, http.StatusBadRequest, "level must be debug, info, warn or error")
				return
			}
			if err := c.Levels.SetLevel(sub, level); err != nil {
				httpError(w, http.StatusBadRequest, err.Error())
				return
			}
			writeJSON(w, http.StatusOK, map[string]string{"subsystem": sub, "level": level})
		})
	}
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// logStreamHandler answers GET /admin/logs: the lines of a stream of hub,
// each flushed as it is written, until the request ends. A line dropped
// because this client read too slowly is replaced, once there is room
// again, by {"msg":"log lines dropped","dropped":N,...}.
func logStreamHandler(hub *LogHub) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f, err := ParseLogFilter(q.Get("level"), q["subsystem"])
		if err != nil {
			httpError(w, http.StatusBadRequest, err.Error())
			return
		}
		s := hub.Subscribe(f)
		defer s.Close()
		rc := http.NewResponseController(w)
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		if err := rc.Flush(); err != nil {
			return
		}
		bw := bufio.NewWriter(w)
		for {
			var it LogItem
			select {
			case <-r.Context().Done():
				return
			case it = <-s.Items():
			}
			line := it.Line
			if line == nil {
				line = droppedLine(it.Dropped, time.Now())
			}
			_, _ = bw.Write(line)
			_ = bw.WriteByte('\n')
			// Write what has queued meanwhile in the same flush.
			if len(s.Items()) > 0 && bw.Buffered() < 32<<10 {
				continue
			}
			if err := bw.Flush(); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}
