package report

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/jepsen/checker"
	"github.com/lifeboat/lifeboat/jepsen/history"
)

func TestSaveFailure(t *testing.T) {
	h := history.New(time.Unix(0, 0))
	h.Add(history.Op{Kind: history.KindIncr, Workload: "w/1", Invoke: 0, Complete: time.Millisecond,
		Outcome: history.Ok, Value: 1, Epoch: 1, Index: 10, Tag: "a"})
	h.Add(history.Op{Kind: history.KindRead, Workload: "w/1", Invoke: 2 * time.Millisecond, Complete: 3 * time.Millisecond,
		Outcome: history.Ok})
	h.Fault(history.Fault{Kind: "kill", Start: 0, End: time.Millisecond})
	ops, _ := h.Snapshot()
	lin := checker.Linearizable(ops, []string{"w/1"}, time.Second)
	if lin.Pass {
		t.Fatal("a read missing an acked incr passed")
	}
	dir := t.TempDir()
	out, err := SaveFailure(dir, "run-1", h, []checker.Verdict{lin})
	if err != nil {
		t.Fatal(err)
	}
	if out != filepath.Join(dir, "run-1") {
		t.Fatalf("saved into %s", out)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	var saved struct{ Ops []history.Op }
	if err := json.Unmarshal([]byte(read(HistoryFile)), &saved); err != nil || len(saved.Ops) != 2 || saved.Ops[0].Tag != "a" {
		t.Fatalf("history: %v, %+v", err, saved)
	}
	var vs []checker.Verdict
	if err := json.Unmarshal([]byte(read(VerdictsFile)), &vs); err != nil || len(vs) != 1 || vs[0].Pass || len(vs[0].Problems) == 0 {
		t.Fatalf("verdicts: %v, %+v", err, vs)
	}
	if s := read(SummaryFile); !strings.Contains(s, "| linearizable | FAIL (1/1)") || !strings.Contains(s, "| kill | 1 |") {
		t.Fatalf("summary:\n%s", s)
	}
	if html := read(VisualizationPrefix + "w_1.html"); !strings.Contains(html, "<html") {
		t.Fatalf("visualization: %.200s", html)
	}
}

func TestSaveFailureSkipsPassingChecks(t *testing.T) {
	ops := []history.Op{{Kind: history.KindIncr, Workload: "w1", Outcome: history.Ok, Value: 1, Index: 10, Tag: "a"}}
	lin := checker.Linearizable(ops, []string{"w1"}, time.Second)
	out, err := SaveFailure(t.TempDir(), "run-2", nil, []checker.Verdict{lin})
	if err != nil {
		t.Fatal(err)
	}
	names, err := filepath.Glob(filepath.Join(out, "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 2 { // verdicts and summary; no history, no html
		t.Fatalf("saved %q", names)
	}
}

func TestSaveFailureRejectsRunName(t *testing.T) {
	for _, name := range []string{"", "..", "a/b"} {
		if _, err := SaveFailure(t.TempDir(), name, nil, nil); !errors.Is(err, ErrRunName) {
			t.Errorf("run name %q: err = %v; want ErrRunName", name, err)
		}
	}
}
