package report

import (
	"fmt"
	"sort"
	"strings"

	"github.com/lifeboat/lifeboat/jepsen/checker"
)

// check is one checker's verdicts over all runs.
type check struct {
	name   string
	runs   int
	failed []checker.Verdict
	last   checker.Verdict
}

// checks groups verdicts by checker, in the order first seen.
func checks(vs []checker.Verdict) []*check {
	var out []*check
	byName := map[string]*check{}
	for _, v := range vs {
		c := byName[v.Name]
		if c == nil {
			c = &check{name: v.Name}
			byName[v.Name] = c
			out = append(out, c)
		}
		c.runs++
		c.last = v
		if !v.Pass {
			c.failed = append(c.failed, v)
		}
	}
	return out
}

// shown is the verdict whose figures and notes stand for c: its first
// failure, or its last run.
func (c *check) shown() checker.Verdict {
	if len(c.failed) > 0 {
		return c.failed[0]
	}
	return c.last
}

// writeChecks writes one row per checker, with the figures of its first
// failure (or of its last run), then the notes of those runs, then the
// failures' problems.
func (s *Summary) writeChecks(b *strings.Builder) {
	cs := checks(s.Verdicts)
	b.WriteString("| check | result | figures |\n|---|---|---|\n")
	for _, c := range cs {
		result := fmt.Sprintf("PASS (%d/%d)", c.runs, c.runs)
		if len(c.failed) > 0 {
			result = fmt.Sprintf("FAIL (%d/%d)", len(c.failed), c.runs)
		}
		fmt.Fprintf(b, "| %s | %s | %s |\n", cell(c.name), result, cell(figures(c.shown().Figures)))
	}
	writeNotes(b, cs)
	for _, c := range cs {
		if len(c.failed) == 0 {
			continue
		}
		fmt.Fprintf(b, "\n## %s\n\n", c.name)
		for _, v := range c.failed {
			for _, p := range v.Problems {
				fmt.Fprintf(b, "- %s\n", p)
			}
		}
	}
}

// writeNotes lists the notes of the runs whose figures the table shows.
func writeNotes(b *strings.Builder, cs []*check) {
	first := true
	for _, c := range cs {
		for _, n := range c.shown().Notes {
			if first {
				b.WriteString("\nNotes of the runs shown:\n\n")
				first = false
			}
			fmt.Fprintf(b, "- %s: %s\n", c.name, n)
		}
	}
}

// figures renders figures as "name=value", sorted by name.
func figures(fs map[string]any) string {
	names := make([]string, 0, len(fs))
	for k := range fs {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s=%v", k, fs[k])
	}
	return strings.Join(parts, " ")
}
