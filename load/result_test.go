package load

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// ok is an OK request sent at start that took lat.
func ok(start, lat time.Duration) Record {
	return Record{Due: start, Start: start, Latency: lat, Status: 200}
}

func TestPercentilesOfSyntheticRecords(t *testing.T) {
	// 1..1000 ms, shuffled, plus failures and 503s that must not count.
	var recs []Record
	for i := 1; i <= 1000; i++ {
		recs = append(recs, ok(time.Duration(i)*time.Millisecond, time.Duration(i)*time.Millisecond))
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
	recs = append(recs,
		Record{Start: time.Second, Latency: time.Minute, Status: 500},
		Record{Start: time.Second, Latency: time.Minute, Status: 503},
		Record{Start: time.Second, Latency: time.Minute, Status: 200, Err: errors.New("body cut short")},
	)
	r := NewResult(t0, 2*time.Second, recs)
	for _, c := range []struct {
		name      string
		got, want time.Duration
	}{
		{"p50", r.P50, 500 * time.Millisecond},
		{"p99", r.P99, 990 * time.Millisecond},
		{"p99.9", r.P999, 999 * time.Millisecond},
	} {
		if !within(c.got, c.want, 0.001) {
			t.Errorf("%s = %v, want %v ± 0.1%%", c.name, c.got, c.want)
		}
	}
	if r.Max != time.Second {
		t.Errorf("max = %v, want exactly 1s (failures excluded)", r.Max)
	}
}

// TestPercentilesMatchSortedReference checks the histogram against the
// nearest-rank percentile of the sorted latencies, on random data.
func TestPercentilesMatchSortedReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 50 {
		n := 1 + rng.IntN(5000)
		var recs []Record
		var lats []time.Duration
		for range n {
			// Log-uniform from 10 µs to 10 s, like real latencies with a tail.
			lat := time.Duration(float64(10*time.Microsecond) * math.Pow(10, rng.Float64()*6))
			recs = append(recs, ok(0, lat))
			lats = append(lats, lat)
		}
		slices.Sort(lats)
		r := NewResult(t0, time.Minute, recs)
		for _, c := range []struct {
			q   float64
			got time.Duration
		}{{50, r.P50}, {99, r.P99}, {99.9, r.P999}} {
			want := nearestRank(lats, c.q)
			if !within(c.got, want, 0.001) || c.got > r.Max {
				t.Fatalf("trial %d (n=%d): p%v = %v, want %v ± 0.1%% and ≤ max %v", trial, n, c.q, c.got, want, r.Max)
			}
		}
		if r.Max != lats[n-1] {
			t.Fatalf("trial %d: max = %v, want %v", trial, r.Max, lats[n-1])
		}
	}
}

func nearestRank(sorted []time.Duration, q float64) time.Duration {
	rank := int(q/100*float64(len(sorted)) + 0.5)
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func within(got, want time.Duration, rel float64) bool {
	d := float64(got - want)
	return d <= rel*float64(want)+1 && -d <= rel*float64(want)+1
}

func TestCountsByOutcome(t *testing.T) {
	overloaded := fmt.Errorf("%w: 5 requests already in flight", ErrOverloaded)
	recs := []Record{
		ok(0, time.Millisecond),
		ok(time.Millisecond, time.Millisecond),
		{Status: 503, RetryAfter: true},
		{Status: 503, RetryAfter: true},
		{Status: 503},
		{Status: 500},
		{Status: 500},
		{Status: 404},
		{Status: 302},
		{Err: overloaded},
		{Err: fmt.Errorf("%w: no complete response within 5s", ErrTimeout)},
		{Err: errors.New("connection refused")},
	}
	r := NewResult(t0, time.Second, recs)
	got := [...]int{r.Sent, r.OK, r.Backpressure, r.BackpressureRetryAfter, r.Failed, r.Overloaded}
	want := [...]int{12, 2, 3, 2, 7, 1}
	if got != want {
		t.Fatalf("sent, ok, backpressure, with Retry-After, failed, overloaded = %v, want %v", got, want)
	}
	if len(r.Errors) != maxSamples {
		t.Fatalf("errors = %v, want the first %d distinct", r.Errors, maxSamples)
	}
	if r.Errors[0] != (ErrorSample{"HTTP 500 Internal Server Error", 2}) {
		t.Errorf("first sample = %+v, want HTTP 500 × 2", r.Errors[0])
	}
	if r.Errors[3].Error != overloaded.Error() {
		t.Errorf("fourth sample = %+v, want the overload", r.Errors[3])
	}
	if r.AchievedRate != 12 {
		t.Errorf("achieved rate = %v, want 12/s", r.AchievedRate)
	}
}

func TestStall(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		name      string
		window    time.Duration
		recs      []Record
		stall, at time.Duration
	}{
		{"gap between completions", time.Second, []Record{
			ok(0, 10*ms), ok(100*ms, 10*ms), // ends 10, 110
			ok(200*ms, 400*ms), // ends 600: 490 ms after 110
			ok(300*ms, 301*ms), // ends 601
			{Start: 150 * ms, Latency: 5 * ms, Status: 503}, // not ok: ignored
			ok(900*ms, 50*ms), // ends 950
		}, 490 * ms, 110 * ms},
		{"completions out of order", time.Second, []Record{
			ok(0, 900*ms), ok(10*ms, 5*ms), ok(800*ms, 10*ms), // ends 900, 15, 810
		}, 795 * ms, 15 * ms},
		{"server dies before the end", time.Second, []Record{
			ok(0, ms), ok(100*ms, ms), {Start: 200 * ms, Err: errors.New("refused")},
		}, 899 * ms, 101 * ms},
		{"never succeeds", time.Second, []Record{{Status: 500}}, time.Second, 0},
		{"completions after the window", 100 * ms, []Record{
			ok(0, ms), ok(50*ms, 250*ms), // ends 1, 300: the stall spans the window's end
		}, 299 * ms, ms},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := NewResult(t0, c.window, c.recs)
			if r.Stall != c.stall || r.StallAt != c.at {
				t.Fatalf("stall %v at %v, want %v at %v", r.Stall, r.StallAt, c.stall, c.at)
			}
		})
	}
}

func TestJSONFieldNames(t *testing.T) {
	r := NewResult(t0, time.Second, []Record{ok(0, 1500*time.Microsecond), {Status: 503, RetryAfter: true}, {Status: 500}})
	r.Target, r.Method, r.Rate, r.Duration = "http://x/", "GET", 3, time.Second
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	want := []string{"achieved_rate", "backpressure", "backpressure_no_retry_after", "backpressure_retry_after",
		"duration_ms", "errors", "failed", "interrupted", "max_lag_ms", "max_ms", "method", "ok", "overloaded",
		"p50_ms", "p99_9_ms", "p99_ms", "rate", "sent", "stall_at_ms", "stall_ms", "start", "target", "window_ms"}
	var got []string
	for k := range m {
		got = append(got, k)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("JSON fields\n got %v\nwant %v", got, want)
	}
	if m["max_ms"] != 1.5 || m["duration_ms"] != 1000.0 || m["failed"] != 1.0 || m["backpressure_retry_after"] != 1.0 {
		t.Fatalf("values: %s", raw)
	}
}

func TestWriteText(t *testing.T) {
	r := NewResult(t0, time.Second, []Record{ok(0, 2*time.Millisecond), {Status: 503, RetryAfter: true}, {Status: 500}})
	r.Target, r.Method, r.Rate, r.Duration = "http://x/", "GET", 3, time.Second
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"GET http://x/ at 3/s for 1s", "sent          3", "ok            1",
		"1 × 503 (1 with Retry-After, 0 without)", "failed        1", "1 × HTTP 500", "max 2.00ms", "stall"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
}

func TestWriteCSV(t *testing.T) {
	recs := []Record{
		ok(20*time.Millisecond, 3*time.Millisecond),
		{Start: 10 * time.Millisecond, Latency: 5 * time.Second, Err: errors.New(`dial: "refused", really`)},
		{Start: 30 * time.Millisecond, Latency: time.Millisecond, Status: 503, RetryAfter: true},
	}
	var b bytes.Buffer
	if err := NewResult(t0, time.Second, recs).WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		strings.Split(CSVHeader, ","),
		{fmt.Sprint(t0.Add(10 * time.Millisecond).UnixNano()), "5000000000", "0", `dial: "refused", really`},
		{fmt.Sprint(t0.Add(20 * time.Millisecond).UnixNano()), "3000000", "200", ""},
		{fmt.Sprint(t0.Add(30 * time.Millisecond).UnixNano()), "1000000", "503", ""},
	}
	if !slices.EqualFunc(rows, want, slices.Equal) {
		t.Fatalf("rows\n got %q\nwant %q", rows, want)
	}
}

func TestEmptyResult(t *testing.T) {
	r := NewResult(t0, 0, nil)
	if r.Sent != 0 || r.P99 != 0 || r.Stall != 0 || r.AchievedRate != 0 {
		t.Fatalf("empty result: %+v", r)
	}
	if err := r.WriteText(&bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
}
