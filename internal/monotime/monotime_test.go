package monotime

import (
	"testing"
	"time"
)

func TestNowAdvancesWithElapsedTime(t *testing.T) {
	a := Now()
	start := time.Now()
	time.Sleep(20 * time.Millisecond)
	b := Now()
	took := time.Since(start)
	if !b.After(a) || a.After(b) || !a.Before(b) {
		t.Fatalf("%d then %d: the clock did not advance", a, b)
	}
	// The two clocks measure the same interval: the boot-time clock may
	// see a little more (it was read before and after the wall readings).
	if got := b.Sub(a); got < 20*time.Millisecond || got > took+10*time.Millisecond {
		t.Fatalf("boot-time clock measured %v for a %v sleep", got, took)
	}
}

func TestArithmetic(t *testing.T) {
	var zero Instant
	if !zero.IsZero() || Instant(1).IsZero() {
		t.Fatal("IsZero")
	}
	i := Instant(5 * time.Second)
	if got := i.Add(2 * time.Second).Sub(i); got != 2*time.Second {
		t.Fatalf("Add/Sub = %v", got)
	}
	wall := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := i.Add(3*time.Second).Wall(i, wall); !got.Equal(wall.Add(3 * time.Second)) {
		t.Fatalf("Wall = %v", got)
	}
}
