package report

import (
	"strings"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/jepsen/checker"
	"github.com/lifeboat/lifeboat/jepsen/history"
)

func run(pass bool) ([]history.Op, []history.Fault, []checker.Verdict, time.Duration) {
	ops := []history.Op{
		{ID: 0, Kind: history.KindIncr, Outcome: history.Ok},
		{ID: 1, Kind: history.KindIncr, Outcome: history.Unknown},
		{ID: 2, Kind: history.KindStale, Outcome: history.Fail, Status: 409},
		{ID: 3, Kind: history.KindRead, Outcome: history.Ok},
	}
	faults := []history.Fault{{Kind: "partition"}, {Kind: "kill"}, {Kind: "partition"}}
	lin := checker.Verdict{Name: checker.NameLinearizable, Pass: true, Figures: map[string]any{"ops": 3, "workloads": 1}}
	if !pass {
		lin.Pass = false
		lin.Problems = []string{"w1: read op 3 misses acked op 0 | pipe"}
	}
	stale := checker.Verdict{Name: checker.NameStaleRejected, Pass: true, Figures: map[string]any{"rejected_409": 1}}
	lin.Notes = []string{"w1: reads found the log trimmed of its 5 oldest entries, through index 9"}
	return ops, faults, []checker.Verdict{lin, stale}, 45 * time.Second
}

func TestSummaryWrite(t *testing.T) {
	var s Summary
	s.Add(run(true))
	s.Add(run(false))
	if s.Passed() {
		t.Fatal("a summary with a failed verdict passed")
	}
	var b strings.Builder
	if err := s.Write(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"# Jepsen: FAIL",
		"2 runs, 1m30s in all.",
		"| kill | 2 |",
		"| partition | 4 |",
		"| incr | 2 | 0 | 2 |",
		"| stale | 0 | 2 | 0 |",
		"| linearizable | FAIL (1/2) | ops=3 workloads=1 |",
		"| stale-rejected | PASS (2/2) | rejected_409=1 |",
		"- linearizable: w1: reads found the log trimmed of its 5 oldest entries, through index 9",
		"## linearizable",
		`- w1: read op 3 misses acked op 0 | pipe`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "## stale-rejected") {
		t.Errorf("summary lists problems of a passing check:\n%s", out)
	}
}

func TestSummaryWritePass(t *testing.T) {
	var s Summary
	s.Add(run(true))
	var b strings.Builder
	if err := s.Write(&b); err != nil {
		t.Fatal(err)
	}
	if !s.Passed() || !strings.Contains(b.String(), "# Jepsen: PASS") || strings.Contains(b.String(), "## ") {
		t.Fatalf("a passing summary:\n%s", b.String())
	}
}
