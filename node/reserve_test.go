package node

import (
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/placement"
)

// A claim holds its room on the target for every other workload until it
// is released; a second claim of the same workload is refused.
func TestReservationsClaim(t *testing.T) {
	r := newReservations()
	need := placement.Resources{MemoryMiB: 100, CPUMillis: 10}
	if !r.claim("w", move{on: "t", need: need}) || r.claim("w", move{on: "u"}) {
		t.Fatal("the first claim must succeed and the second fail")
	}
	if !r.claim("park", move{on: "h"}) { // a preemption loads its holder, takes no room
		t.Fatal("claim of another workload refused")
	}
	if got := r.load(); got["t"] != 1 || got["h"] != 1 || len(got) != 2 {
		t.Fatalf("load %v", got)
	}
	nodes := []placement.Node{{Name: "t", Free: placement.Resources{MemoryMiB: 500, CPUMillis: 100}}, {Name: "h"}}
	if got := r.withReservations(nodes, "", evacNow); got[0].Free != (placement.Resources{MemoryMiB: 400, CPUMillis: 90}) || got[1].Free != (placement.Resources{}) {
		t.Fatalf("with the claim: %+v", got)
	}
	if got := r.withReservations(nodes, "w", evacNow); got[0].Free != nodes[0].Free {
		t.Fatalf("w finds its own room taken: %+v", got[0])
	}
	if nodes[0].Free.MemoryMiB != 500 {
		t.Fatal("withReservations changed its input")
	}
	r.release("w")
	if r.busy("w") || !r.busy("park") {
		t.Fatal("release freed the wrong claim")
	}
	if got := r.withReservations(nodes, "", evacNow); got[0].Free != nodes[0].Free {
		t.Fatalf("room held after the release: %+v", got[0])
	}
}

// A reservation holds room until it expires, is dropped then, and turns
// into the claim when its workload's move starts.
func TestReservationsReserve(t *testing.T) {
	r := newReservations()
	until := evacNow.Add(time.Minute)
	r.reserve("t", "vip", placement.Resources{MemoryMiB: 300}, until)
	nodes := []placement.Node{{Name: "t", Free: placement.Resources{MemoryMiB: 500}}}
	cases := []struct {
		name   string
		except string
		at     time.Time
		free   int64
		held   bool
	}{
		{"held for others", "", evacNow, 200, true},
		{"not for itself", "vip", evacNow, 500, true},
		{"until its end", "", until, 200, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := r.withReservations(nodes, c.except, c.at); got[0].Free.MemoryMiB != c.free {
				t.Fatalf("free %d, want %d", got[0].Free.MemoryMiB, c.free)
			}
			if r.reservedFor("vip", c.at) != c.held {
				t.Fatalf("reservedFor %v", !c.held)
			}
		})
	}
	if r.reservedFor("vip", until.Add(time.Nanosecond)) {
		t.Fatal("an expired reservation still holds")
	}
	r.claim("vip", move{on: "t", need: placement.Resources{MemoryMiB: 300}})
	if r.reservedFor("vip", evacNow) {
		t.Fatal("the reservation outlived the claim of its workload")
	}
	if got := r.withReservations(nodes, "", evacNow); got[0].Free.MemoryMiB != 200 {
		t.Fatalf("the claim does not hold the room: %+v", got[0])
	}
	r.release("vip")
	r.reserve("t", "x", placement.Resources{MemoryMiB: 300}, evacNow)
	r.withReservations(nodes, "", evacNow.Add(time.Second)) // drops the expired one
	if r.reservedFor("x", evacNow) {
		t.Fatal("withReservations kept an expired reservation")
	}
}
