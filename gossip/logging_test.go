package gossip

import (
	"log/slog"
	"testing"
)

func TestParseLogLine(t *testing.T) {
	tests := []struct {
		line  string
		level slog.Level
		msg   string
	}{
		{"[DEBUG] memberlist: Stream connection from=127.0.0.1:1", slog.LevelDebug, "memberlist: Stream connection from=127.0.0.1:1"},
		{"[INFO] memberlist: Marking n3 as failed", slog.LevelInfo, "memberlist: Marking n3 as failed"},
		{"[WARN] memberlist: Refuting a suspect message (from: n2)", slog.LevelWarn, "memberlist: Refuting a suspect message (from: n2)"},
		{"[ERR] memberlist: Failed to send gossip", slog.LevelError, "memberlist: Failed to send gossip"},
		{"[ERROR] x", slog.LevelError, "x"},
		{"[TRACE] y", slog.LevelDebug, "y"},
		{"no tag", slog.LevelInfo, "no tag"},
	}
	for _, tt := range tests {
		level, msg := parseLogLine(tt.line)
		if level != tt.level || msg != tt.msg {
			t.Errorf("parseLogLine(%q) = %v %q, want %v %q", tt.line, level, msg, tt.level, tt.msg)
		}
	}
}

func TestSuspectedName(t *testing.T) {
	tests := map[string]string{
		"memberlist: Suspect n3 has failed, no acks received":               "n3",
		"memberlist: Suspect node with spaces has failed, no acks received": "node with spaces",
		"memberlist: Suspect  has failed, no acks received":                 "",
		"memberlist: Marking n3 as failed, suspect timeout reached":         "",
		"memberlist: Suspect n3 has failed":                                 "",
	}
	for msg, want := range tests {
		got, ok := suspectedName(msg)
		if got != want || ok != (want != "") {
			t.Errorf("suspectedName(%q) = %q, %v; want %q", msg, got, ok, want)
		}
	}
}

// The adapter must see memberlist's exact wording: a change of it in a
// memberlist upgrade would silently hide suspicions (the in-memory
// failure test would then fail too).
func TestMemberlistLoggerFeedsSuspicion(t *testing.T) {
	var got string
	l := newMemberlistLogger(newTestLog(t).logger(), func(level slog.Level, msg string) {
		if name, ok := suspectedName(msg); ok && level == slog.LevelInfo {
			got = name
		}
	})
	l.Printf("[INFO] memberlist: Suspect %s has failed, no acks received", "n7")
	if got != "n7" {
		t.Errorf("suspect hook saw %q, want n7", got)
	}
}
