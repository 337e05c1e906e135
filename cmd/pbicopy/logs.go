package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pbicopy/pbicopy/source/powerbi"
)

// jsonLogs reports whether what the command writes on stderr is JSON
// records: --log-format (or PBICOPY_LOG_FORMAT, read here too for errors
// met before the flags were parsed), else JSON unless stderr is a
// terminal.
func (a *app) jsonLogs() bool {
	format := a.logs.format
	if format == "" {
		format = os.Getenv(envName("log-format"))
	}
	switch format {
	case "json":
		return true
	case "text":
		return false
	}
	return !isTerminal(a.stderr)
}

// newLogger makes the logger the flags ask for, on stderr.
func (a *app) newLogger() (*slog.Logger, error) {
	switch a.logs.format {
	case "", "text", "json":
	default:
		return nil, usagef("--log-format %q: use text or json", a.logs.format)
	}
	return a.plainLogger(), nil
}

// plainLogger is the logger of the flags, without checking them.
func (a *app) plainLogger() *slog.Logger {
	level := slog.LevelInfo
	if a.logs.verbose {
		level = slog.LevelDebug
	}
	if a.jsonLogs() {
		return slog.New(slog.NewJSONHandler(a.stderr, &slog.HandlerOptions{Level: level, ReplaceAttr: jsonAttr}))
	}
	h := slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level, ReplaceAttr: textAttr})
	return slog.New(&blockHandler{Handler: h, w: a.stderr, mu: &sync.Mutex{}})
}

// blockHandler writes an inferred mapping (a powerbi.MappingBlock attribute)
// of a text record as it is, under the record's line, ready to paste,
// instead of quoted on one line. JSON records keep it as a string.
type blockHandler struct {
	slog.Handler
	w  io.Writer
	mu *sync.Mutex // shared by the handlers derived from one
}

func (h *blockHandler) Handle(ctx context.Context, r slog.Record) error {
	var block string
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if b, ok := a.Value.Any().(powerbi.MappingBlock); ok {
			block = string(b)
		} else {
			out.AddAttrs(a)
		}
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	if block == "" {
		return h.Handler.Handle(ctx, r)
	}
	if err := h.Handler.Handle(ctx, out); err != nil {
		return err
	}
	_, err := io.WriteString(h.w, block)
	return err
}

func (h *blockHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &blockHandler{Handler: h.Handler.WithAttrs(attrs), w: h.w, mu: h.mu}
}

func (h *blockHandler) WithGroup(name string) slog.Handler {
	return &blockHandler{Handler: h.Handler.WithGroup(name), w: h.w, mu: h.mu}
}

// jsonAttr makes JSON records easy to query: durations are numbers of
// seconds, errors one line.
func jsonAttr(groups []string, a slog.Attr) slog.Attr {
	switch v := a.Value.Any().(type) {
	case time.Duration:
		return slog.Float64(a.Key, v.Seconds())
	case error:
		return slog.String(a.Key, oneLineError(v))
	}
	return a
}

// textAttr keeps errors on one line in text logs too.
func textAttr(groups []string, a slog.Attr) slog.Attr {
	if err, ok := a.Value.Any().(error); ok {
		return slog.String(a.Key, oneLineError(err))
	}
	return a
}

// oneLineError is the text of err on one line: the lines of a multi-line
// message (a service's dump) joined.
func oneLineError(err error) string {
	s := err.Error()
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	var parts []string
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " ")
}
