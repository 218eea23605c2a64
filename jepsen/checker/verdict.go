// Package checker judges a Jepsen run's history: each checker reads the
// recorded ops (and faults, or what the runner saw after healing) and
// returns a Verdict. Checkers are pure: no clock, no network.
package checker

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/lifeboat/lifeboat/jepsen/history"
	"github.com/lifeboat/lifeboat/jepsen/model"
)

// MaxProblems is how many problems a verdict lists; the rest are counted.
const MaxProblems = 10

// Checker names, as in Verdict.Name.
const (
	NameLinearizable  = "linearizable"
	NameSingleServer  = "single-server"
	NameNoLostAcks    = "no-lost-acks"
	NameStaleRejected = "stale-rejected"
	NameMonotonic     = "monotonic"
	NameRecovered     = "recovered"
)

// Verdict is one checker's judgement of a run.
type Verdict struct {
	Name string `json:"name"`
	// Pass reports whether the checker found no violation.
	Pass bool `json:"pass"`
	// Figures are what the checker counted, by name.
	Figures map[string]any `json:"figures,omitempty"`
	// Problems are the first MaxProblems violations, each naming ops by
	// id and time; a last line counts any more.
	Problems []string `json:"problems,omitempty"`
	// Notes say what the checker could check only in part, whether it
	// passed or not: a results log's trim point, for one.
	Notes []string `json:"notes,omitempty"`
	// Results are the linearizability checker's porcupine results, one
	// per workload, for the report to draw; nil for other checkers.
	Results []model.Result `json:"-"`
}

// problems collects violations, keeping the first MaxProblems.
type problems struct {
	list []string
	n    int
}

func (p *problems) add(format string, args ...any) {
	p.n++
	if len(p.list) < MaxProblems {
		p.list = append(p.list, fmt.Sprintf(format, args...))
	}
}

// verdict is the verdict named name: it passes if nothing was added.
func (p *problems) verdict(name string, figures map[string]any) Verdict {
	list := p.list
	if p.n > len(list) {
		list = append(list, fmt.Sprintf("… and %d more", p.n-len(list)))
	}
	return Verdict{Name: name, Pass: p.n == 0, Figures: figures, Problems: list}
}

// describe names op for a problem: "op 12 (incr on h1, epoch 3, 1.2s–1.3s)".
func describe(op history.Op) string {
	return fmt.Sprintf("op %d (%s on %s, epoch %d, %v–%v)", op.ID, op.Kind, op.Host, op.Epoch,
		round(op.Invoke), round(op.Complete))
}

func round(d time.Duration) time.Duration { return d.Round(time.Microsecond) }

// pick returns the ops of workload w of kind with outcome.
func pick(ops []history.Op, w, kind, outcome string) []history.Op {
	var out []history.Op
	for _, op := range ops {
		if op.Workload == w && op.Kind == kind && op.Outcome == outcome {
			out = append(out, op)
		}
	}
	return out
}

// Workloads are the workloads ops touch, sorted.
func Workloads(ops []history.Op) []string {
	var ws []string
	for _, op := range ops {
		if op.Workload != "" && !slices.Contains(ws, op.Workload) {
			ws = append(ws, op.Workload)
		}
	}
	sort.Strings(ws)
	return ws
}
