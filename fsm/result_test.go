package fsm

import (
	"fmt"
	"testing"
	"time"
)

func TestResultAppend(t *testing.T) {
	h := newHarness(t)
	e := h.grant("w", "n1")
	r := h.ok(ResultAppend{Workload: "w", Epoch: e, Value: "1", At: t0})
	want := Result{Index: h.index, Epoch: e, Value: "1", At: t0}
	if r.Value != want {
		t.Fatalf("append returned %#v, want %#v", r.Value, want)
	}
	if got := h.workload("w").Results; len(got) != 1 || got[0] != want {
		t.Fatalf("results %#v, want [%#v]", got, want)
	}
}

func TestResultAppendRefuses(t *testing.T) {
	h := newHarness(t)
	h.ok(WorkloadSubmit{Spec: testSpec("fresh"), At: t0})
	old := h.grant("w", "n1")
	cur := h.grant("w", "n2")
	tests := []struct {
		name string
		c    ResultAppend
		want error
	}{
		{"tombstoned epoch", ResultAppend{Workload: "w", Epoch: old, Value: "x"}, ErrStaleEpoch},
		{"future epoch", ResultAppend{Workload: "w", Epoch: cur + 100, Value: "x"}, ErrStaleEpoch},
		{"zero epoch", ResultAppend{Workload: "w", Value: "x"}, ErrStaleEpoch},
		{"never granted", ResultAppend{Workload: "fresh", Value: "x"}, ErrStaleEpoch},
		{"unknown workload", ResultAppend{Workload: "ghost", Epoch: cur, Value: "x"}, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { h.refuse(tt.c, tt.want) })
	}
}

func TestResultsKeepTheNewest(t *testing.T) {
	h := newHarness(t)
	e := h.grant("w", "n1")
	for i := range MaxResults + 5 {
		h.ok(ResultAppend{Workload: "w", Epoch: e, Value: fmt.Sprint(i), At: t0.Add(time.Duration(i))})
	}
	got := h.workload("w").Results
	if len(got) != MaxResults || got[0].Value != "5" || got[len(got)-1].Index != h.index {
		t.Fatalf("%d results from %q; want %d from \"5\" ending at index %d", len(got), got[0].Value, MaxResults, h.index)
	}
}
