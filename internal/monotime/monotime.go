// Package monotime reads the host's boot-time clock (CLOCK_BOOTTIME): it
// counts from boot, keeps counting while the host is suspended, and no
// step of the wall clock (NTP, an operator, a test's clock jump) moves
// it. Every process on the host reads the same clock, so an agent and its
// fence keeper can hand each other a deadline on it. Leases and fences
// are measured on it; wall-clock times are only recorded and shown.
package monotime

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// Instant is a reading of the boot-time clock: the time since boot.
type Instant time.Duration

// Now reads the boot-time clock. It panics if the kernel refuses, which
// Linux never does for CLOCK_BOOTTIME.
func Now() Instant {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		panic(fmt.Sprintf("monotime: clock_gettime(CLOCK_BOOTTIME): %v", err))
	}
	return Instant(ts.Nano())
}

// IsZero reports whether i is the zero Instant (no reading).
func (i Instant) IsZero() bool { return i == 0 }

// Add is i moved by d.
func (i Instant) Add(d time.Duration) Instant { return i + Instant(d) }

// Sub is the time from j to i.
func (i Instant) Sub(j Instant) time.Duration { return time.Duration(i - j) }

// After reports whether i is later than j.
func (i Instant) After(j Instant) bool { return i > j }

// Before reports whether i is earlier than j.
func (i Instant) Before(j Instant) bool { return i < j }

// Wall converts i to the wall clock, given a reading of both clocks
// taken together (now and wallNow): for logs and the API only.
func (i Instant) Wall(now Instant, wallNow time.Time) time.Time {
	return wallNow.Add(i.Sub(now))
}
