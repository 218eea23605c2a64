package fsm

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestWorkloadSubmit(t *testing.T) {
	h := newHarness(t)
	spec := WorkloadSpec{ID: "w", Command: []string{"x"}, Env: map[string]string{}}
	h.ok(WorkloadSubmit{Spec: spec, At: t0})
	want := Workload{
		Spec:        spec.WithDefaults(),
		Assignment:  Assignment{State: WorkloadPending},
		NextSeq:     1,
		SubmittedAt: t0,
	}
	want.Spec.Env = nil // stored canonically
	if got := h.workload("w"); !reflect.DeepEqual(got, want) {
		t.Fatalf("workload = %#v\nwant %#v", got, want)
	}
}

func TestWorkloadSubmitRefuses(t *testing.T) {
	h := newHarness(t)
	h.ok(WorkloadSubmit{Spec: testSpec("w"), At: t0})
	h.refuse(WorkloadSubmit{Spec: testSpec("w"), At: t0}, ErrExists)
	bad := testSpec("x")
	bad.Service.Port = 0
	r := h.refuse(WorkloadSubmit{Spec: bad, At: t0}, ErrInvalid)
	if !strings.Contains(r.Err.Error(), "service.port") {
		t.Fatalf("error %q does not name service.port", r.Err)
	}
}

func TestWorkloadReport(t *testing.T) {
	h := newHarness(t)
	epoch := h.grant("w", "n1")
	h.ok(WorkloadReport{Workload: "w", Epoch: epoch, State: WorkloadRunning, Message: "pid 42", At: t0})
	if a := h.workload("w").Assignment; a.State != WorkloadRunning || a.Message != "pid 42" {
		t.Fatalf("assignment %#v, want running with the message", a)
	}
	h.ok(WorkloadReport{Workload: "w", Epoch: epoch, State: WorkloadFailed, At: t0})
	if a := h.workload("w").Assignment; a.State != WorkloadFailed || a.Message != "" {
		t.Fatalf("assignment %#v, want failed with no message", a)
	}
}

func TestWorkloadReportRefuses(t *testing.T) {
	h := newHarness(t)
	h.ok(WorkloadSubmit{Spec: testSpec("pending"), At: t0})
	old := h.grant("w", "n1")
	cur := h.grant("w", "n2")
	tests := []struct {
		name string
		c    WorkloadReport
		want error
	}{
		{"tombstoned epoch", WorkloadReport{Workload: "w", Epoch: old, State: WorkloadRunning}, ErrStaleEpoch},
		{"future epoch", WorkloadReport{Workload: "w", Epoch: cur + 1, State: WorkloadRunning}, ErrStaleEpoch},
		{"zero epoch", WorkloadReport{Workload: "w", State: WorkloadRunning}, ErrStaleEpoch},
		{"never granted", WorkloadReport{Workload: "pending", State: WorkloadRunning}, ErrStaleEpoch},
		{"unknown workload", WorkloadReport{Workload: "ghost", Epoch: cur, State: WorkloadRunning}, ErrNotFound},
		{"pending state", WorkloadReport{Workload: "w", Epoch: cur, State: WorkloadPending}, ErrInvalid},
		{"unknown state", WorkloadReport{Workload: "w", Epoch: cur, State: "sleeping"}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { h.refuse(tt.c, tt.want) })
	}
}

func TestWorkloadRemove(t *testing.T) {
	h := newHarness(t)
	h.grant("w", "n1")
	h.ok(MigrationBegin{Migration: Migration{ID: "m", Workload: "w"}, At: t0})
	h.ok(WorkloadRemove{Workload: "w"})
	if _, ok := h.m.Workload("w"); ok {
		t.Fatal("workload still there")
	}
	if len(h.m.Migrations()) != 1 {
		t.Fatal("removing a workload dropped its migration history")
	}
	h.refuse(WorkloadRemove{Workload: "w"}, ErrNotFound)
	h.ok(WorkloadSubmit{Spec: testSpec("w"), At: t0.Add(time.Hour)}) // the id is free again
}

func TestWorkloadSetStandbys(t *testing.T) {
	h := newHarness(t)
	epoch := h.grant("w", "n1")
	h.ok(WorkloadSetStandbys{Workload: "w", Standbys: []string{"n2", "n3"}})
	a := h.workload("w").Assignment
	if !reflect.DeepEqual(a.Standbys, []string{"n2", "n3"}) || a.Epoch != epoch || a.Holder != "n1" {
		t.Fatalf("assignment %#v: want standbys n2 n3 with holder and epoch unchanged", a)
	}
	h.ok(WorkloadSetStandbys{Workload: "w", Standbys: []string{}})
	if a := h.workload("w").Assignment; a.Standbys != nil {
		t.Fatalf("standbys %#v, want none", a.Standbys)
	}
	h.refuse(WorkloadSetStandbys{Workload: "ghost"}, ErrNotFound)
}

func TestWorkloadPreempt(t *testing.T) {
	h := newHarness(t)
	h.refuse(WorkloadPreempt{Workload: "ghost", PrevEpoch: 1}, ErrNotFound)
	h.ok(WorkloadSubmit{Spec: testSpec("w"), At: t0})
	h.refuse(WorkloadPreempt{Workload: "w"}, ErrInvalid) // never granted: nothing to preempt
	epoch := h.grant("w", "n1")
	h.refuse(WorkloadPreempt{Workload: "w", PrevEpoch: epoch + 1}, ErrStaleEpoch)
	h.ok(CheckpointPrepare{Workload: "w", Epoch: epoch, Digest: "d", Bytes: 1, At: t0})
	h.ok(WorkloadPreempt{Workload: "w", PrevEpoch: epoch, Reason: "room for critical", At: t0})
	w := h.workload("w")
	if a := w.Assignment; a.State != WorkloadPending || a.Holder != "" || a.Epoch != 0 || a.Message != "preempted: room for critical" {
		t.Fatalf("after preempt: %#v, want pending with no holder", a)
	}
	if !w.Tombstoned(epoch) || w.Pending != nil {
		t.Fatalf("epoch %d tombstoned %v, pending %v: want the epoch over and its checkpoint dropped", epoch, w.Tombstoned(epoch), w.Pending)
	}
	h.refuse(ResultAppend{Workload: "w", Epoch: epoch, Value: "late", At: t0}, ErrStaleEpoch)
	if next := h.grant("w", "n2"); next <= epoch {
		t.Fatalf("re-grant epoch %d, want above %d", next, epoch)
	}
}

func TestWorkloadGrant(t *testing.T) {
	h := newHarness(t)
	h.ok(WorkloadSubmit{Spec: testSpec("w"), At: t0})
	first := h.ok(WorkloadGrant{Workload: "w", Holder: "n1", Standbys: []string{"n2"}, At: t0})
	if first.Value != h.index {
		t.Fatalf("grant returned %v, want the epoch %d", first.Value, h.index)
	}
	e1 := first.Value.(uint64)
	h.ok(WorkloadReport{Workload: "w", Epoch: e1, State: WorkloadRunning, Message: "up", At: t0})
	h.ok(CheckpointPrepare{Workload: "w", Epoch: e1, Digest: "d", At: t0})
	e2 := h.ok(WorkloadGrant{Workload: "w", Holder: "n2", PrevEpoch: e1, At: t0.Add(time.Second)}).Value.(uint64)
	w := h.workload("w")
	want := Assignment{Holder: "n2", Epoch: e2, State: WorkloadGranted, GrantedAt: t0.Add(time.Second)}
	if !reflect.DeepEqual(w.Assignment, want) {
		t.Fatalf("assignment %#v\nwant %#v", w.Assignment, want)
	}
	if w.Pending != nil {
		t.Fatalf("pending checkpoint of epoch %d survived the grant", e1)
	}
	if !slices.Equal(w.Tombstones, []uint64{e1}) || !w.Tombstoned(e1) || w.Tombstoned(e2) {
		t.Fatalf("tombstones %v: want [%d]", w.Tombstones, e1)
	}
}

func TestWorkloadGrantRefuses(t *testing.T) {
	h := newHarness(t)
	h.ok(WorkloadSubmit{Spec: testSpec("fresh"), At: t0})
	e1 := h.grant("w", "n1")
	e2 := h.grant("w", "n2")
	tests := []struct {
		name string
		c    WorkloadGrant
		want error
	}{
		{"stale prev epoch", WorkloadGrant{Workload: "w", Holder: "n3", PrevEpoch: e1}, ErrStaleEpoch},
		{"future prev epoch", WorkloadGrant{Workload: "w", Holder: "n3", PrevEpoch: e2 + 1}, ErrStaleEpoch},
		{"prev epoch of never granted", WorkloadGrant{Workload: "fresh", Holder: "n3", PrevEpoch: 1}, ErrStaleEpoch},
		{"unknown workload", WorkloadGrant{Workload: "ghost", Holder: "n3"}, ErrNotFound},
		{"no holder", WorkloadGrant{Workload: "w"}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { h.refuse(tt.c, tt.want) })
	}
}
