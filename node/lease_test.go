package node

import (
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/internal/monotime"
)

// fakeMono is a boot-time clock a test moves by hand.
type fakeMono struct{ at monotime.Instant }

func (c *fakeMono) now() monotime.Instant { return c.at }
func (c *fakeMono) step(d time.Duration)  { c.at = c.at.Add(d) }
func newFakeMono() *fakeMono              { return &fakeMono{at: monotime.Instant(time.Hour)} }
func testLeases(clock *fakeMono) *leases {
	return &leases{name: "a1", ttl: 6 * time.Second, drift: 0.05, mono: clock.now, seen: map[string]monotime.Instant{}}
}

// TestLeaderLeaseEnds: a new leader counts every lease from when it
// became leader (it may not call a node silent for one TTL), a renewal it
// applies moves that node's end, and a renewal applied while it does not
// lead counts for nothing.
func TestLeaderLeaseEnds(t *testing.T) {
	clock := newFakeMono()
	l := testLeases(clock)
	l.renewed([]string{"b1"}, clock.now()) // not leading: ignored
	l.leading(true)
	start := clock.now()
	if got, want := l.end("b1"), start.Add(6*time.Second); got != want {
		t.Fatalf("a new leader's lease end for b1: %v, want %v (one TTL from leadership)", got, want)
	}
	clock.step(4 * time.Second)
	l.renewed([]string{"b1"}, clock.now())
	if got, want := l.end("b1"), clock.now().Add(6*time.Second); got != want {
		t.Fatalf("after a renewal b1's lease ends %v, want %v", got, want)
	}
	if got, want := l.end("c1"), start.Add(6*time.Second); got != want {
		t.Fatalf("c1, never renewed here, ends %v, want %v", got, want)
	}
	if l.ledFor() != 4*time.Second {
		t.Fatalf("led for %v, want 4s", l.ledFor())
	}
	l.leading(false)
	if l.ledFor() != 0 {
		t.Fatalf("a follower reports it led for %v", l.ledFor())
	}
	l.leading(true)
	if got, want := l.end("b1"), clock.now().Add(6*time.Second); got != want {
		t.Fatalf("a renewal seen in an earlier leadership still counts: end %v, want %v", got, want)
	}
}

// TestHolderLeaseEndsBeforeLeaders: a node's own view of its lease runs
// from the send time of its renewal and is shortened by the drift bound,
// so it ends before the leader's.
func TestHolderLeaseEndsBeforeLeaders(t *testing.T) {
	clock := newFakeMono()
	l := testLeases(clock)
	if !l.validUntil().IsZero() {
		t.Fatal("a node that never renewed holds a lease")
	}
	sent := clock.now()
	l.sentAt = sent
	got := l.validUntil()
	if want := sent.Add(time.Duration(float64(6*time.Second) * 0.95)); got != want {
		t.Fatalf("valid until %v, want %v", got, want)
	}
	if !got.Before(sent.Add(l.ttl)) {
		t.Fatal("the holder's view of its lease does not end before the leader's")
	}
}

func TestLeaseBatcherTakesSortedOnce(t *testing.T) {
	b := newLeaseBatcher()
	b.pending["c1"], b.pending["a1"], b.pending["b1"] = true, true, true
	names, _ := b.take()
	if len(names) != 3 || names[0] != "a1" || names[2] != "c1" {
		t.Fatalf("took %v, want a1 b1 c1", names)
	}
	if again, _ := b.take(); len(again) != 0 {
		t.Fatalf("a second take got %v", again)
	}
}
