package fsm

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

func TestMigrationBegin(t *testing.T) {
	h := newHarness(t)
	in := Migration{ID: "m1", Workload: "w", From: "n1", To: "n2", Reason: "preempt",
		Phases: []PhaseTime{{Phase: "bogus"}}}
	h.ok(MigrationBegin{Migration: in, At: t0})
	h.ok(MigrationBegin{Migration: Migration{ID: "m2", Phase: PhaseCheckpointing}, At: t0})
	got := h.m.Migrations()
	want := []Migration{
		{ID: "m1", Workload: "w", From: "n1", To: "n2", Reason: "preempt", Phase: PhasePlanned,
			Phases: []PhaseTime{{Phase: PhasePlanned, At: t0}}},
		{ID: "m2", Phase: PhaseCheckpointing, Phases: []PhaseTime{{Phase: PhaseCheckpointing, At: t0}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("migrations %#v\nwant %#v", got, want)
	}
}

func TestMigrationBeginRefuses(t *testing.T) {
	h := newHarness(t)
	h.ok(MigrationBegin{Migration: Migration{ID: "m1"}, At: t0})
	h.refuse(MigrationBegin{Migration: Migration{ID: "m1"}, At: t0}, ErrExists)
	h.refuse(MigrationBegin{Migration: Migration{}, At: t0}, ErrInvalid)
	h.refuse(MigrationBegin{Migration: Migration{ID: "m2", Phase: "teleporting"}, At: t0}, ErrInvalid)
}

func TestMigrationsKeepTheNewest(t *testing.T) {
	h := newHarness(t)
	for i := range MaxMigrations + 3 {
		h.ok(MigrationBegin{Migration: Migration{ID: fmt.Sprint("m", i)}, At: t0})
	}
	got := h.m.Migrations()
	if len(got) != MaxMigrations || got[0].ID != "m3" || got[len(got)-1].ID != fmt.Sprint("m", MaxMigrations+2) {
		t.Fatalf("%d migrations from %s to %s; want %d from m3", len(got), got[0].ID, got[len(got)-1].ID, MaxMigrations)
	}
	h.refuse(MigrationPhase{ID: "m0", Phase: PhaseDone}, ErrNotFound)
}

func TestMigrationPhase(t *testing.T) {
	h := newHarness(t)
	h.ok(MigrationBegin{Migration: Migration{ID: "m1"}, At: t0})
	h.ok(MigrationPhase{ID: "m1", Phase: PhaseRestoring, Epoch: 42, At: t0.Add(time.Second)})
	h.ok(MigrationPhase{ID: "m1", Phase: PhaseFailed, Error: "restore: no space", At: t0.Add(2 * time.Second)})
	h.ok(MigrationPhase{ID: "m1", Phase: PhaseRolledBack, At: t0.Add(3 * time.Second)})
	got := h.m.Migrations()[0]
	want := Migration{ID: "m1", Phase: PhaseRolledBack, Epoch: 42, Error: "restore: no space", Phases: []PhaseTime{
		{PhasePlanned, t0}, {PhaseRestoring, t0.Add(time.Second)},
		{PhaseFailed, t0.Add(2 * time.Second)}, {PhaseRolledBack, t0.Add(3 * time.Second)},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("migration %#v\nwant %#v", got, want)
	}
	h.refuse(MigrationPhase{ID: "m1", Phase: "teleporting"}, ErrInvalid)
	h.refuse(MigrationPhase{ID: "ghost", Phase: PhaseDone}, ErrNotFound)
}
