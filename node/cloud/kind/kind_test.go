package kind

import (
	"slices"
	"testing"
)

func TestAllDistinctAndFresh(t *testing.T) {
	all := All()
	want := []string{"preempt", "rebalance", "maintenance", "terminate"}
	if !slices.Equal(all, want) {
		t.Fatalf("All() = %v, want %v (the values are wire strings: changing one breaks the emulator's control API)", all, want)
	}
	all[0] = "changed"
	if All()[0] != Preempt {
		t.Fatal("All returns a shared slice: a caller's write changed it")
	}
}
