package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/load"
)

// demoReport is what the demo measured.
type demoReport struct {
	Mode, ModeWhy string

	From, FromWhere string
	To, ToWhere     string
	Before, After   uint64 // epochs
	// NoticeAt is when the notice came, from the load's start; Moved how
	// long after it the counter ran on its new holder (0: it never did).
	NoticeAt, Moved time.Duration
	Migration       *fsm.Migration

	Load *load.Result
	// Warm is the counts the wait for the ingress took before the load.
	Warm int
	// Count is the counter's value after the load (CountErr if unread).
	Count    int
	CountErr error
}

// countContinued: every answered count is in the counter, none twice.
func (r *demoReport) countContinued() bool {
	return r.CountErr == nil && r.Count == r.Warm+r.Load.OK
}

// verdict fails the demo when the story broke a promise.
func (r *demoReport) verdict() error {
	var why []string
	if r.To == "" {
		why = append(why, "the counter never ran on another peer")
	}
	if n := r.Load.Failed + r.Load.Backpressure; n > 0 {
		why = append(why, fmt.Sprintf("%d requests failed", n))
	}
	if !r.countContinued() {
		why = append(why, "the count did not continue")
	}
	if len(why) > 0 {
		return fmt.Errorf("%w: %s", errDemoFailed, strings.Join(why, "; "))
	}
	return nil
}

func (r *demoReport) write(w io.Writer) error {
	l := r.Load
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(k, format string, a ...any) { fmt.Fprintf(tw, "  %s\t%s\n", k, fmt.Sprintf(format, a...)) }
	fmt.Fprintln(tw, "lifeboat demo — report")
	p("checkpoints", "%s — %s", r.Mode, r.ModeWhy)
	p("notice", "AWS spot interruption on %s (%s), %v into the load", r.From, r.FromWhere, r.NoticeAt.Round(time.Millisecond))
	if r.To != "" {
		p("moved", "%s (%s) → %s (%s), epoch %d → %d", r.From, r.FromWhere, r.To, r.ToWhere, r.Before, r.After)
		p("evacuation", "running on %s %v after the notice%s", r.To, r.Moved.Round(time.Millisecond), phases(r.Migration))
	} else {
		p("moved", "NOT: the counter still ran on %s when the load ended", r.From)
	}
	p("client load", "%d requests at %v/s through demo-3's ingress, open loop", l.Sent, l.Rate)
	p("stall", "%v — the longest time without an answer, from %v into the load",
		l.Stall.Round(time.Millisecond), l.StallAt.Round(time.Millisecond))
	p("latency", "p50 %v  p99 %v  p99.9 %v  max %v", ms(l.P50), ms(l.P99), ms(l.P999), ms(l.Max))
	p("errors", "%d failed, %d answered 503", l.Failed, l.Backpressure)
	switch {
	case r.CountErr != nil:
		p("count", "unread: %v", r.CountErr)
	case r.countContinued():
		p("count", "continued: %d counts answered, the counter is at %d (none lost, none twice)", r.Warm+l.OK, r.Count)
	default:
		p("count", "BROKEN: %d counts answered, the counter is at %d", r.Warm+l.OK, r.Count)
	}
	for _, e := range l.Errors {
		p("error", "%d × %s", e.Count, e.Error)
	}
	return tw.Flush()
}

// phases lists a migration's phases as offsets from its first.
func phases(m *fsm.Migration) string {
	if m == nil || len(m.Phases) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(" (")
	t0 := m.Phases[0].At
	for i, ph := range m.Phases {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s +%v", ph.Phase, ph.At.Sub(t0).Round(time.Millisecond))
	}
	b.WriteString(")")
	return b.String()
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}
