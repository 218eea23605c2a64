package fsm

import (
	"errors"
	"slices"
	"testing"
)

func TestWorkloadGrantNeverLowersTheEpoch(t *testing.T) {
	m := New()
	m.Apply(1, encodeOrFail(t, WorkloadSubmit{Spec: testSpec("w"), At: t0}))
	m.Apply(10, encodeOrFail(t, WorkloadGrant{Workload: "w", Holder: "n1", At: t0}))
	for _, index := range []uint64{10, 5} {
		r := m.Apply(index, encodeOrFail(t, WorkloadGrant{Workload: "w", Holder: "n2", At: t0}))
		if !errors.Is(r.Err, ErrStaleEpoch) {
			t.Fatalf("grant at index %d: %v, want ErrStaleEpoch", index, r.Err)
		}
	}
	if w, _ := m.Workload("w"); w.Assignment.Epoch != 10 || w.Assignment.Holder != "n1" {
		t.Fatalf("assignment %#v, want n1 at 10", w.Assignment)
	}
}

func TestTombstonesKeepTheNewest(t *testing.T) {
	h := newHarness(t)
	var epochs []uint64
	for i := range MaxTombstones + 6 {
		epochs = append(epochs, h.grant("w", "n"+string(rune('a'+i%26))))
	}
	w := h.workload("w")
	past := epochs[:len(epochs)-1]
	if want := past[len(past)-MaxTombstones:]; !slices.Equal(w.Tombstones, want) {
		t.Fatalf("tombstones %v\nwant %v", w.Tombstones, want)
	}
	for _, e := range past {
		if !w.Tombstoned(e) {
			t.Errorf("past epoch %d not tombstoned", e)
		}
	}
	if w.Tombstoned(epochs[len(epochs)-1]) || w.Tombstoned(0) {
		t.Error("the current epoch or 0 is tombstoned")
	}
}

func TestTombstoned(t *testing.T) {
	full := make([]uint64, MaxTombstones)
	for i := range full {
		full[i] = uint64(100 + 2*i)
	}
	tests := []struct {
		name       string
		tombstones []uint64
		epoch      uint64
		want       bool
	}{
		{"none", nil, 5, false},
		{"zero", []uint64{3}, 0, false},
		{"kept", []uint64{3, 7}, 7, true},
		{"between kept", []uint64{3, 7}, 5, false},
		{"older than kept, list short", []uint64{3, 7}, 2, false},
		{"older than kept, list full", full, 99, true},
		{"gap in a full list", full, 101, false},
		{"newer than kept", full, full[len(full)-1] + 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &Workload{Tombstones: tt.tombstones}
			if got := w.Tombstoned(tt.epoch); got != tt.want {
				t.Fatalf("Tombstoned(%d) = %v, want %v", tt.epoch, got, tt.want)
			}
		})
	}
}
