package main

import (
	"log/slog"
	"os"
	"strings"
	"time"
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
	return slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level, ReplaceAttr: textAttr}))
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
