package fsm

import (
	"fmt"
	"strings"
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
	var fifth uint64
	for i := range MaxResults + 5 {
		h.ok(ResultAppend{Workload: "w", Epoch: e, Value: fmt.Sprint(i), At: t0.Add(time.Duration(i)), KeepBytes: MaxResultBytes})
		if i == 4 {
			fifth = h.index
		}
	}
	w := h.workload("w")
	got := w.Results
	if len(got) != MaxResults || got[0].Value != "5" || got[len(got)-1].Index != h.index {
		t.Fatalf("%d results from %q; want %d from \"5\" ending at index %d", len(got), got[0].Value, MaxResults, h.index)
	}
	if l := w.ResultsLog(); l.Trimmed != 5 || l.TrimmedThrough != fifth || len(l.Results) != MaxResults {
		t.Fatalf("trim point %d through %d; want the 5 oldest, through index %d", l.Trimmed, l.TrimmedThrough, fifth)
	}
}

// TestResultsByteBound: the values kept total at most KeepBytes; the
// oldest go first, the trim point counts them, and the newest stays even
// when it alone is larger.
func TestResultsByteBound(t *testing.T) {
	const value = 64 << 10
	h := newHarness(t)
	e := h.grant("w", "n1")
	var indices []uint64
	for i := range 20 {
		v := fmt.Sprintf("%0*d", value, i)
		h.ok(ResultAppend{Workload: "w", Epoch: e, Value: v, At: t0, KeepBytes: MaxResultBytes})
		indices = append(indices, h.index)
	}
	w := h.workload("w")
	kept := MaxResultBytes / value // 16
	if len(w.Results) != kept || w.Results[0].Index != indices[20-kept] {
		t.Fatalf("%d results from index %d; want the newest %d, from index %d", len(w.Results), w.Results[0].Index, kept, indices[20-kept])
	}
	if w.ResultsTrimmed != uint64(20-kept) || w.ResultsTrimmedThrough != indices[20-kept-1] {
		t.Fatalf("trimmed %d through %d; want %d through %d", w.ResultsTrimmed, w.ResultsTrimmedThrough, 20-kept, indices[20-kept-1])
	}

	h.ok(ResultAppend{Workload: "w", Epoch: e, Value: "tiny", At: t0, KeepBytes: 3})
	if w = h.workload("w"); len(w.Results) != 1 || w.Results[0].Value != "tiny" || w.ResultsTrimmed != 20 {
		t.Fatalf("%d results, %d trimmed; want only the newest (larger than the bound) kept and 20 trimmed", len(w.Results), w.ResultsTrimmed)
	}
}

// TestResultsWithoutByteBound: an append written before the byte bound
// (KeepBytes 0) is bounded by count only, as it was when it was applied,
// so that an old log replays to the state it had.
func TestResultsWithoutByteBound(t *testing.T) {
	h := newHarness(t)
	e := h.grant("w", "n1")
	big := strings.Repeat("x", MaxResultBytes/2)
	for range 4 {
		h.ok(ResultAppend{Workload: "w", Epoch: e, Value: big, At: t0})
	}
	if w := h.workload("w"); len(w.Results) != 4 || w.ResultsTrimmed != 0 || w.ResultsTrimmedThrough != 0 {
		t.Fatalf("%d results, trimmed %d through %d; want all 4 kept and nothing trimmed", len(w.Results), w.ResultsTrimmed, w.ResultsTrimmedThrough)
	}
}

// TestResultsTrimPointOfAnOldSnapshot: a snapshot from before the trim
// point restores with none, and trims after it count from there.
func TestResultsTrimPointOfAnOldSnapshot(t *testing.T) {
	m := New()
	old := `{"nodes":{},"index":20,"workloads":{"w":{"spec":{"id":"w","command":["x"]},` +
		`"assignment":{"holder":"n1","epoch":5,"state":"running"},"next_seq":1,` +
		`"results":[{"index":10,"epoch":5,"value":"a"},{"index":11,"epoch":5,"value":"b"}]}}}`
	if err := m.Restore(strings.NewReader(old)); err != nil {
		t.Fatal(err)
	}
	w, _ := m.Workload("w")
	if l := w.ResultsLog(); l.Trimmed != 0 || l.TrimmedThrough != 0 || len(l.Results) != 2 {
		t.Fatalf("old snapshot's log %+v; want its 2 results and no trim point", l)
	}
	r := m.Apply(21, encodeOrFail(t, ResultAppend{Workload: "w", Epoch: 5, Value: "cc", At: t0, KeepBytes: 2}))
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	w, _ = m.Workload("w")
	if l := w.ResultsLog(); l.Trimmed != 2 || l.TrimmedThrough != 11 || len(l.Results) != 1 || l.Results[0].Index != 21 {
		t.Fatalf("after a trimming append: %+v; want 2 trimmed through index 11 and the append kept", l)
	}
}
