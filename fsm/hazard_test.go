package fsm

import (
	"fmt"
	"testing"
)

func TestHazardRecord(t *testing.T) {
	h := newHarness(t)
	hz := Hazard{Node: "n1", Cloud: "gcp", Region: "europe-west1", Zone: "europe-west1-b", InstanceType: "n2-standard-4", Kind: "preempt", At: t0}
	h.ok(HazardRecord{Hazard: hz})
	if got := h.m.Hazards(); len(got) != 1 || got[0] != hz {
		t.Fatalf("hazards %#v, want [%#v]", got, hz)
	}
	h.refuse(HazardRecord{Hazard: Hazard{Node: "n1", At: t0}}, ErrInvalid)
}

func TestHazardsKeepTheNewest(t *testing.T) {
	h := newHarness(t)
	for i := range MaxHazards + 2 {
		h.ok(HazardRecord{Hazard: Hazard{Node: fmt.Sprint("n", i), Kind: "rebalance", At: t0}})
	}
	got := h.m.Hazards()
	if len(got) != MaxHazards || got[0].Node != "n2" || got[len(got)-1].Node != fmt.Sprint("n", MaxHazards+1) {
		t.Fatalf("%d hazards from %s; want %d from n2", len(got), got[0].Node, MaxHazards)
	}
}
