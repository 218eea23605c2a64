package checker

import (
	"fmt"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/jepsen/history"
)

func TestAll(t *testing.T) {
	ops := []history.Op{
		incr(0, 0, 10, "h1", 1, 1, "a", 10), probe(1, 12, 13, "h1", 1, 1),
		incr(2, 20, 30, "h2", 2, 2, "b", 12), stale(40, history.Fail, 409, "old"),
		read(3, 100, 110, ent(10, 1, "1@a"), ent(12, 2, "2@b")),
	}
	rec := RecoveryObservation{HealedAt: ms(50), WorkloadsRunningAt: map[string]time.Duration{wl: ms(60)},
		Leaders: map[string]string{"h1": "h1", "h2": "h1"}, Bound: time.Second}
	faults := []history.Fault{{Kind: "kill", Start: ms(15), End: ms(50)}}
	vs := All(ops, faults, rec, nil)
	want := []string{NameLinearizable, NameSingleServer, NameNoLostAcks, NameStaleRejected, NameMonotonic, NameRecovered}
	if len(vs) != len(want) {
		t.Fatalf("%d verdicts; want %d", len(vs), len(want))
	}
	for i, v := range vs {
		if v.Name != want[i] {
			t.Fatalf("verdict %d is %s; want %s", i, v.Name, want[i])
		}
		expect(t, v, true)
	}
	if !Passed(vs) {
		t.Fatal("Passed is false for passing verdicts")
	}
	ops[4].Log = ops[4].Log[:1]
	vs = All(ops, faults, rec, []string{wl})
	if Passed(vs) || vs[0].Pass || vs[2].Pass {
		t.Fatalf("a lost ack passed: %+v", vs)
	}
}

func TestProblemsAreCapped(t *testing.T) {
	var p problems
	for i := range MaxProblems + 5 {
		p.add("problem %d", i)
	}
	v := p.verdict("x", nil)
	if v.Pass || len(v.Problems) != MaxProblems+1 || v.Problems[MaxProblems] != "… and 5 more" {
		t.Fatalf("got %q", v.Problems)
	}
	if v.Problems[0] != fmt.Sprintf("problem %d", 0) {
		t.Fatalf("first problem %q", v.Problems[0])
	}
}
