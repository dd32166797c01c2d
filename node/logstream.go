package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultLogStreamLines is how many lines a log stream buffers for a reader
// before it drops lines for that reader.
const DefaultLogStreamLines = 1024

// ErrLogFilter is the reason of every error ParseLogFilter returns.
var ErrLogFilter = errors.New("node: bad log filter")

// LogHub fans a process's log lines out to live readers (GET /admin/logs).
// Its [LogHub.Handler] sits beside the process's own handler, installed
// once where logging is wired; every record the process logs (that its
// handler is enabled for) is encoded as one JSON line and offered to each
// stream whose filter matches. A stream buffers a bounded number of lines;
// when it is full the line is dropped for that stream only, counted, and
// the reader is told how many it missed as soon as there is room again. A
// logging call therefore never waits for a reader. It is safe for
// concurrent use.
type LogHub struct {
	lines   int                          // each stream's buffer
	streams atomic.Pointer[[]*LogStream] // copy on write
	mu      sync.Mutex                   // serialises changes to streams
	dropped atomic.Uint64                // over all streams, ever
}

// NewLogHub returns a hub whose streams buffer lines lines each (at least
// 1; DefaultLogStreamLines if lines is 0).
func NewLogHub(lines int) *LogHub {
	if lines <= 0 {
		lines = DefaultLogStreamLines
	}
	h := &LogHub{lines: lines}
	h.streams.Store(&[]*LogStream{})
	return h
}

// Dropped returns how many lines the hub dropped for slow readers, over
// all streams since it started.
func (h *LogHub) Dropped() uint64 { return h.dropped.Load() }

// LogFilter selects the lines of a stream.
type LogFilter struct {
	// Level is the lowest level streamed.
	Level slog.Level
	// Subsystems are the loggers streamed (the "logger" attribute, e.g.
	// "p2pnode/syncer"); empty streams every logger.
	Subsystems []string
}

// ParseLogFilter reads a filter from a level name ("" is debug: every line
// the process logs) and subsystem names, each of which may be a
// comma-separated list.
func ParseLogFilter(level string, subsystems []string) (LogFilter, error) {
	f := LogFilter{Level: slog.LevelDebug}
	if level != "" {
		if err := f.Level.UnmarshalText([]byte(level)); err != nil {
			return LogFilter{}, fmt.Errorf("%w: level %q: want debug, info, warn or error", ErrLogFilter, level)
		}
	}
	for _, s := range subsystems {
		for p := range strings.SplitSeq(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				f.Subsystems = append(f.Subsystems, p)
			}
		}
	}
	return f, nil
}

func (f *LogFilter) match(level slog.Level, subsystem string) bool {
	return level >= f.Level && (len(f.Subsystems) == 0 || slices.Contains(f.Subsystems, subsystem))
}

// LogStream is one reader's view of the hub: the lines that match its
// filter, in a bounded buffer. Close it when the reader leaves.
type LogStream struct {
	hub     *LogHub
	filter  LogFilter
	ch      chan LogItem
	pending atomic.Uint64 // dropped since the last notice was queued
	dropped atomic.Uint64 // dropped in all
	closed  sync.Once
}

// LogItem is what a stream delivers: a JSON line (without its newline), or,
// where lines were dropped, how many.
type LogItem struct {
	Line    []byte
	Dropped uint64
}

// Subscribe opens a stream of the lines that match f.
func (h *LogHub) Subscribe(f LogFilter) *LogStream {
	s := &LogStream{hub: h, filter: f, ch: make(chan LogItem, h.lines)}
	h.mu.Lock()
	defer h.mu.Unlock()
	next := append(slices.Clone(*h.streams.Load()), s)
	h.streams.Store(&next)
	return s
}

// Items delivers the stream's lines in the order they were logged, with a
// notice of the dropped lines where lines are missing.
func (s *LogStream) Items() <-chan LogItem { return s.ch }

// Dropped returns how many lines the stream dropped because its buffer was
// full.
func (s *LogStream) Dropped() uint64 { return s.dropped.Load() }

// Close detaches the stream from the hub; it is idempotent. Items is not
// closed: stop reading it.
func (s *LogStream) Close() {
	s.closed.Do(func() {
		h := s.hub
		h.mu.Lock()
		defer h.mu.Unlock()
		next := slices.DeleteFunc(slices.Clone(*h.streams.Load()), func(x *LogStream) bool { return x == s })
		h.streams.Store(&next)
	})
}

// offer queues line without blocking: first a notice of the lines dropped
// before it, if any, then the line; what does not fit is dropped.
func (s *LogStream) offer(line []byte) {
	if n := s.pending.Swap(0); n > 0 {
		select {
		case s.ch <- LogItem{Dropped: n}:
		default:
			s.pending.Add(n)
			s.drop()
			return
		}
	}
	select {
	case s.ch <- LogItem{Line: line}:
	default:
		s.drop()
	}
}

func (s *LogStream) drop() {
	s.pending.Add(1)
	s.dropped.Add(1)
	s.hub.dropped.Add(1)
}

// publish offers r, logged by subsystem through a handler derived by ops,
// to every matching stream; it encodes the line once, only if one matches.
func (h *LogHub) publish(ctx context.Context, subsystem string, ops []handlerOp, r slog.Record) {
	var line []byte
	for _, s := range *h.streams.Load() {
		if !s.filter.match(r.Level, subsystem) {
			continue
		}
		if line == nil {
			line = encodeLine(ctx, ops, r)
		}
		s.offer(line)
	}
}

// handlerOp is one WithAttrs (attrs set) or WithGroup (group set) call on
// the tee, replayed on the JSON encoder of a line.
type handlerOp struct {
	attrs []slog.Attr
	group string
}

// lineOptions encode a line as go-log's JSON format does: lowercase
// levels, "time" in RFC 3339 with nanoseconds.
var lineOptions = &slog.HandlerOptions{
	Level: slog.Level(-1 << 10), // every record handed over
	ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.LevelKey {
			if l, ok := a.Value.Any().(slog.Level); ok {
				return slog.String(slog.LevelKey, strings.ToLower(l.String()))
			}
		}
		return a
	},
}

// encodeLine returns r as one JSON object, without the newline.
func encodeLine(ctx context.Context, ops []handlerOp, r slog.Record) []byte {
	var buf bytes.Buffer
	var j slog.Handler = slog.NewJSONHandler(&buf, lineOptions)
	for _, op := range ops {
		if op.group != "" {
			j = j.WithGroup(op.group)
		} else {
			j = j.WithAttrs(op.attrs)
		}
	}
	_ = j.Handle(ctx, r)
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// droppedLine is the line a reader receives in place of n dropped lines.
func droppedLine(n uint64, now time.Time) []byte {
	var buf bytes.Buffer
	r := slog.NewRecord(now, slog.LevelWarn, "log lines dropped", 0)
	r.AddAttrs(slog.String("logger", "p2pnode/admin"), slog.Uint64("dropped", n))
	_ = slog.NewJSONHandler(&buf, lineOptions).Handle(context.Background(), r)
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// Handler returns a handler that passes every record to next and offers it
// to the hub's streams. Its Enabled is next's: the streams see the lines
// the process logs, at the levels it logs them (change those at run time to
// stream more). The subsystem of a record is the "logger" attribute its
// logger carries.
func (h *LogHub) Handler(next slog.Handler) slog.Handler {
	return &teeHandler{next: next, hub: h}
}

// teeHandler is LogHub.Handler's handler.
type teeHandler struct {
	next      slog.Handler
	hub       *LogHub
	subsystem string
	ops       []handlerOp
	grouped   bool // a group is open: a "logger" attr no longer names the subsystem
}

func (t *teeHandler) Enabled(ctx context.Context, l slog.Level) bool { return t.next.Enabled(ctx, l) }

func (t *teeHandler) Handle(ctx context.Context, r slog.Record) error {
	if len(*t.hub.streams.Load()) > 0 {
		sub := t.subsystem
		if sub == "" && !t.grouped {
			r.Attrs(func(a slog.Attr) bool {
				if a.Key == "logger" {
					sub = a.Value.String()
					return false
				}
				return true
			})
		}
		t.hub.publish(ctx, sub, t.ops, r)
	}
	return t.next.Handle(ctx, r)
}

func (t *teeHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := *t
	out.next = t.next.WithAttrs(attrs)
	out.ops = append(slices.Clip(t.ops), handlerOp{attrs: attrs})
	if !t.grouped {
		for _, a := range attrs {
			if a.Key == "logger" {
				out.subsystem = a.Value.String()
			}
		}
	}
	return &out
}

func (t *teeHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return t
	}
	out := *t
	out.next = t.next.WithGroup(name)
	out.ops = append(slices.Clip(t.ops), handlerOp{group: name})
	out.grouped = true
	return &out
}

// LogHubOf returns the hub of h if h is a hub's Handler, nil otherwise.
func LogHubOf(h slog.Handler) *LogHub {
	if t, ok := h.(*teeHandler); ok {
		return t.hub
	}
	return nil
}
