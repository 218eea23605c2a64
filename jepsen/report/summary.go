// Package report prints what Jepsen runs found and saves the artifacts of
// a failed run: its history, its verdicts and porcupine's view of every
// non-linearizable workload.
package report

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/lifeboat/lifeboat/jepsen/checker"
	"github.com/lifeboat/lifeboat/jepsen/history"
)

// Summary is what one or more runs found. The zero value is empty and
// ready; Add folds in a run.
type Summary struct {
	Runs     int
	Duration time.Duration
	// FaultsByKind counts the injected faults by kind.
	FaultsByKind map[string]int
	// Ops counts ops by kind, then outcome.
	Ops map[string]map[string]int
	// Verdicts are every run's verdicts, in run order.
	Verdicts []checker.Verdict
}

// Add folds one run, which lasted d, into s.
func (s *Summary) Add(ops []history.Op, faults []history.Fault, verdicts []checker.Verdict, d time.Duration) {
	if s.FaultsByKind == nil {
		s.FaultsByKind = map[string]int{}
	}
	if s.Ops == nil {
		s.Ops = map[string]map[string]int{}
	}
	s.Runs++
	s.Duration += d
	for _, f := range faults {
		s.FaultsByKind[f.Kind]++
	}
	for _, op := range ops {
		kind := op.Kind
		if op.Via != "" {
			kind += " (" + op.Via + ")"
		}
		if s.Ops[kind] == nil {
			s.Ops[kind] = map[string]int{}
		}
		s.Ops[kind][op.Outcome]++
	}
	s.Verdicts = append(s.Verdicts, verdicts...)
}

// Passed reports whether every verdict passed.
func (s *Summary) Passed() bool { return checker.Passed(s.Verdicts) }

// Write renders s as markdown: totals, then tables of faults, ops and
// checks, then the problems of the checks that failed.
func (s *Summary) Write(w io.Writer) error {
	var b strings.Builder
	result := "PASS"
	if !s.Passed() {
		result = "FAIL"
	}
	fmt.Fprintf(&b, "# Jepsen: %s\n\n%d runs, %v in all.\n\n", result, s.Runs, s.Duration.Round(time.Millisecond))
	s.writeFaults(&b)
	s.writeOps(&b)
	s.writeChecks(&b)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

func (s *Summary) writeFaults(b *strings.Builder) {
	b.WriteString("| fault | count |\n|---|---:|\n")
	for _, k := range sortedKeys(s.FaultsByKind) {
		fmt.Fprintf(b, "| %s | %d |\n", cell(k), s.FaultsByKind[k])
	}
	b.WriteString("\n")
}

func (s *Summary) writeOps(b *strings.Builder) {
	b.WriteString("| op | ok | fail | unknown |\n|---|---:|---:|---:|\n")
	for _, k := range sortedKeys(s.Ops) {
		fmt.Fprintf(b, "| %s |", cell(k))
		for _, o := range []string{history.Ok, history.Fail, history.Unknown} {
			fmt.Fprintf(b, " %d |", s.Ops[k][o])
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// cell escapes s for a markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
