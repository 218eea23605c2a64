package gossip

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"strings"
)

// logWriter turns memberlist's *log.Logger lines ("[WARN] memberlist: ...")
// into slog records at the matching level. memberlist writes from any of
// its goroutines; *log.Logger serialises the calls to Write.
type logWriter struct {
	log *slog.Logger
	// onLine, when set, sees every message (without its level prefix)
	// before it is logged; Gossip uses it to notice suspicions.
	onLine func(level slog.Level, msg string)
}

// newMemberlistLogger returns the *log.Logger to hand to memberlist.
func newMemberlistLogger(l *slog.Logger, onLine func(slog.Level, string)) *log.Logger {
	return log.New(&logWriter{log: l, onLine: onLine}, "", 0)
}

// Write logs one line of memberlist output; it never fails.
func (w *logWriter) Write(p []byte) (int, error) {
	level, msg := parseLogLine(string(bytes.TrimSpace(p)))
	if w.onLine != nil {
		w.onLine(level, msg)
	}
	w.log.Log(context.Background(), level, msg, "src", "memberlist")
	return len(p), nil
}

// levelPrefixes maps memberlist's (and go-hclog's) level tags to slog.
var levelPrefixes = []struct {
	tag   string
	level slog.Level
}{
	{"[TRACE]", slog.LevelDebug},
	{"[DEBUG]", slog.LevelDebug},
	{"[INFO]", slog.LevelInfo},
	{"[WARN]", slog.LevelWarn},
	{"[ERR]", slog.LevelError},
	{"[ERROR]", slog.LevelError},
}

// parseLogLine splits a level tag off line; untagged lines are Info.
func parseLogLine(line string) (slog.Level, string) {
	for _, p := range levelPrefixes {
		if rest, ok := strings.CutPrefix(line, p.tag); ok {
			return p.level, strings.TrimSpace(rest)
		}
	}
	return slog.LevelInfo, line
}

// suspectedName returns the node a memberlist log message says this node
// has just suspected after a failed probe. memberlist v0.7.0 logs
// "memberlist: Suspect NAME has failed, no acks received" and exposes
// suspicion in no other way (see MemberSuspect).
func suspectedName(msg string) (string, bool) {
	rest, ok := strings.CutPrefix(msg, "memberlist: Suspect ")
	if !ok {
		return "", false
	}
	name, ok := strings.CutSuffix(rest, " has failed, no acks received")
	if !ok || name == "" {
		return "", false
	}
	return name, true
}

// discardLogger is used when Config.Logger is nil.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
