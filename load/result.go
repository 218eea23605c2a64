package load

import (
	"cmp"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Record is what happened to one request. Times are offsets from the
// run's start (Result.Start), on the monotonic clock.
type Record struct {
	// Due is when the schedule meant to send it: i/Rate.
	Due time.Duration
	// Start is when it was sent (or refused, for ErrOverloaded).
	Start time.Duration
	// Latency runs from Start to the end of the response body; 0 for a
	// request that was never sent.
	Latency time.Duration
	// Status is the HTTP status code; 0 when no response arrived.
	Status int
	// RetryAfter reports whether the response carried a Retry-After header.
	RetryAfter bool
	// Err is why no complete response was read: ErrOverloaded, ErrTimeout
	// or the transport's error. Nil when the body was read to its end.
	Err error
}

// End is when the request finished, from the run's start.
func (r Record) End() time.Duration { return r.Start + r.Latency }

// Outcome is how a request counts in the report.
type Outcome int

// Outcomes.
const (
	// OutcomeFailed is anything but a 2xx or a 503: a transport error, a
	// timeout, a request refused as overloaded, or another status.
	OutcomeFailed Outcome = iota
	// OutcomeOK is a 2xx with its body read in full.
	OutcomeOK
	// OutcomeBackpressure is a 503: the server declined the request, the
	// way lifeboat's proxy does while a workload moves.
	OutcomeBackpressure
)

// Outcome classifies r.
func (r Record) Outcome() Outcome {
	switch {
	case r.Err != nil:
		return OutcomeFailed
	case r.Status >= 200 && r.Status < 300:
		return OutcomeOK
	case r.Status == http.StatusServiceUnavailable:
		return OutcomeBackpressure
	}
	return OutcomeFailed
}

// describe is the error text of a failed request: its Err, else its status.
func (r Record) describe() string {
	if r.Err != nil {
		return r.Err.Error()
	}
	return fmt.Sprintf("HTTP %d %s", r.Status, http.StatusText(r.Status))
}

// ErrorSample is one kind of failure and how many requests failed so.
type ErrorSample struct {
	Error string `json:"error"`
	Count int    `json:"count"`
}

// maxSamples is how many distinct failure texts a Result keeps; failures
// of other kinds still count in Failed.
const maxSamples = 5

// Result is the report of one run. NewResult computes every field but
// Target, Method, Rate, Duration and Interrupted, which Run fills in.
type Result struct {
	// Target, Method, Rate and Duration are the run's configuration.
	Target   string
	Method   string
	Rate     float64
	Duration time.Duration
	// Interrupted reports whether the run was cancelled before Duration.
	Interrupted bool

	// Start is when the schedule began; Record times are offsets from it.
	Start time.Time
	// Window is how long the schedule ran: Duration, or less when
	// interrupted.
	Window time.Duration

	// Sent counts every request the schedule issued, those refused as
	// overloaded included, so Sent = OK + Backpressure + Failed.
	Sent int
	// OK counts 2xx responses read in full.
	OK int
	// Backpressure counts 503 responses; BackpressureRetryAfter those of
	// them that carried Retry-After.
	Backpressure           int
	BackpressureRetryAfter int
	// Failed counts every other request: other statuses, transport errors,
	// timeouts and Overloaded. Zero is the "0 failed requests" claim.
	Failed int
	// Overloaded counts requests not sent because MaxInflight were out.
	Overloaded int
	// Errors are the first few distinct failure texts with their counts.
	Errors []ErrorSample

	// P50, P99, P999 and Max are latencies of the OK requests (zero when
	// there are none).
	P50, P99, P999, Max time.Duration
	// AchievedRate is Sent per second of Window.
	AchievedRate float64
	// MaxLag is how late the schedule sent its latest request (Start -
	// Due): a large one means this machine, not the server, was the
	// bottleneck.
	MaxLag time.Duration

	// Stall is the client-visible stall: the longest time without an OK
	// response completing, counted between consecutive OK completions and
	// from the start of the run to the first, and from the last to the end
	// of Window (so a run that never succeeds stalls for all of it). Its
	// floor is the schedule's interval 1/Rate plus a response's latency, so
	// choose a rate whose interval is well below the stalls to be seen.
	// StallAt is when it began, from Start.
	Stall   time.Duration
	StallAt time.Duration

	// Records are the requests in schedule order.
	Records []Record
}

// NewResult computes the report of the requests recs, sent by a schedule
// that began at start and ran for window. It is pure: same records, same
// Result.
//
// Percentiles come from an HDR histogram (github.com/HdrHistogram/
// hdrhistogram-go, the Go port of Gil Tene's HdrHistogram that wrk2 and
// most latency tools report with; standard library only at run time) at
// 3 significant digits, so each is within 0.1% of the exact value; they
// are capped at the exact Max.
func NewResult(start time.Time, window time.Duration, recs []Record) *Result {
	r := &Result{Start: start, Window: window, Records: recs, Sent: len(recs)}
	r.count()
	r.percentiles()
	r.Stall, r.StallAt = longestGap(recs, window)
	if window > 0 {
		r.AchievedRate = float64(r.Sent) / window.Seconds()
	}
	return r
}

// count fills the counters, the error samples and MaxLag.
func (r *Result) count() {
	for _, rec := range r.Records {
		r.MaxLag = max(r.MaxLag, rec.Start-rec.Due)
		switch rec.Outcome() {
		case OutcomeOK:
			r.OK++
		case OutcomeBackpressure:
			r.Backpressure++
			if rec.RetryAfter {
				r.BackpressureRetryAfter++
			}
		case OutcomeFailed:
			r.Failed++
			r.sample(rec.describe())
		}
		if errors.Is(rec.Err, ErrOverloaded) {
			r.Overloaded++
		}
	}
}

// sample counts text among the first maxSamples distinct failure texts.
func (r *Result) sample(text string) {
	for i := range r.Errors {
		if r.Errors[i].Error == text {
			r.Errors[i].Count++
			return
		}
	}
	if len(r.Errors) < maxSamples {
		r.Errors = append(r.Errors, ErrorSample{Error: text, Count: 1})
	}
}

// histogram bounds: 1 µs to 1 h in nanoseconds, 3 significant digits.
const (
	histLowest  = int64(time.Microsecond)
	histHighest = int64(time.Hour)
	histDigits  = 3
)

// percentiles fills P50, P99, P999 and Max from the OK requests.
func (r *Result) percentiles() {
	h := hdrhistogram.New(histLowest, histHighest, histDigits)
	for _, rec := range r.Records {
		if rec.Outcome() != OutcomeOK {
			continue
		}
		r.Max = max(r.Max, rec.Latency)
		// Out-of-range values cannot happen for a sent request
		// (Timeout < 1 h in practice); clamp rather than drop.
		_ = h.RecordValue(min(max(int64(rec.Latency), 0), histHighest))
	}
	if h.TotalCount() == 0 {
		return
	}
	at := func(q float64) time.Duration { return min(time.Duration(h.ValueAtQuantile(q)), r.Max) }
	r.P50, r.P99, r.P999 = at(50), at(99), at(99.9)
}

// longestGap is the longest stretch of window without an OK completion,
// and where it began; see Result.Stall.
func longestGap(recs []Record, window time.Duration) (gap, at time.Duration) {
	ends := make([]time.Duration, 0, len(recs))
	for _, rec := range recs {
		if rec.Outcome() == OutcomeOK {
			ends = append(ends, rec.End())
		}
	}
	slices.Sort(ends)
	var prev time.Duration
	for _, e := range ends {
		if e-prev > gap {
			gap, at = e-prev, prev
		}
		prev = e
	}
	if window-prev > gap {
		gap, at = window-prev, prev
	}
	return gap, at
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// resultJSON is the stable JSON form of a Result: snake_case names,
// durations in milliseconds with an _ms suffix.
type resultJSON struct {
	Target                   string        `json:"target"`
	Method                   string        `json:"method"`
	Rate                     float64       `json:"rate"`
	DurationMS               float64       `json:"duration_ms"`
	Interrupted              bool          `json:"interrupted"`
	Start                    time.Time     `json:"start"`
	WindowMS                 float64       `json:"window_ms"`
	Sent                     int           `json:"sent"`
	OK                       int           `json:"ok"`
	Backpressure             int           `json:"backpressure"`
	BackpressureRetryAfter   int           `json:"backpressure_retry_after"`
	BackpressureNoRetryAfter int           `json:"backpressure_no_retry_after"`
	Failed                   int           `json:"failed"`
	Overloaded               int           `json:"overloaded"`
	Errors                   []ErrorSample `json:"errors"`
	P50MS                    float64       `json:"p50_ms"`
	P99MS                    float64       `json:"p99_ms"`
	P999MS                   float64       `json:"p99_9_ms"`
	MaxMS                    float64       `json:"max_ms"`
	AchievedRate             float64       `json:"achieved_rate"`
	MaxLagMS                 float64       `json:"max_lag_ms"`
	StallMS                  float64       `json:"stall_ms"`
	StallAtMS                float64       `json:"stall_at_ms"`
}

// MarshalJSON writes the report without the records (WriteCSV has them).
func (r *Result) MarshalJSON() ([]byte, error) {
	errs := r.Errors
	if errs == nil {
		errs = []ErrorSample{}
	}
	return json.Marshal(resultJSON{
		Target: r.Target, Method: r.Method, Rate: r.Rate, DurationMS: ms(r.Duration), Interrupted: r.Interrupted,
		Start: r.Start, WindowMS: ms(r.Window),
		Sent: r.Sent, OK: r.OK, Backpressure: r.Backpressure, BackpressureRetryAfter: r.BackpressureRetryAfter,
		BackpressureNoRetryAfter: r.Backpressure - r.BackpressureRetryAfter, Failed: r.Failed, Overloaded: r.Overloaded,
		Errors: errs, P50MS: ms(r.P50), P99MS: ms(r.P99), P999MS: ms(r.P999), MaxMS: ms(r.Max),
		AchievedRate: r.AchievedRate, MaxLagMS: ms(r.MaxLag), StallMS: ms(r.Stall), StallAtMS: ms(r.StallAt),
	})
}

// WriteText writes the report for a person, in a dozen lines.
func (r *Result) WriteText(w io.Writer) error {
	p := &errWriter{w: w}
	run := fmt.Sprintf("%s %s at %g/s for %v", r.Method, r.Target, r.Rate, r.Duration)
	if r.Interrupted {
		run += fmt.Sprintf(" (interrupted after %v)", r.Window.Round(time.Millisecond))
	}
	p.printf("run           %s\n", run)
	p.printf("sent          %d (%.1f/s; schedule at most %s late)\n", r.Sent, r.AchievedRate, fmtDur(r.MaxLag))
	p.printf("ok            %d\n", r.OK)
	p.printf("backpressure  %d × 503 (%d with Retry-After, %d without)\n",
		r.Backpressure, r.BackpressureRetryAfter, r.Backpressure-r.BackpressureRetryAfter)
	p.printf("failed        %d", r.Failed)
	if r.Overloaded > 0 {
		p.printf(" (%d not sent: client overloaded)", r.Overloaded)
	}
	p.printf("\n")
	for _, e := range r.Errors {
		p.printf("              %d × %s\n", e.Count, e.Error)
	}
	if r.OK > 0 {
		p.printf("latency (ok)  p50 %s  p99 %s  p99.9 %s  max %s\n", fmtDur(r.P50), fmtDur(r.P99), fmtDur(r.P999), fmtDur(r.Max))
	} else {
		p.printf("latency (ok)  - (no ok responses)\n")
	}
	p.printf("stall         %s starting %s into the run (longest time without an ok response)\n", fmtDur(r.Stall), fmtDur(r.StallAt))
	return p.err
}

// fmtDur prints d in ms below 10 s, with precision that fits loopback
// latencies and cutover stalls alike.
func fmtDur(d time.Duration) string {
	switch {
	case d < 10*time.Millisecond:
		return strconv.FormatFloat(ms(d), 'f', 2, 64) + "ms"
	case d < 10*time.Second:
		return strconv.FormatFloat(ms(d), 'f', 1, 64) + "ms"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + "s"
}

// errWriter keeps the first write error, so WriteText checks once.
type errWriter struct {
	w   io.Writer
	err error
}

func (p *errWriter) printf(format string, a ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, a...)
	}
}

// CSVHeader is the first line WriteCSV writes.
const CSVHeader = "start_unix_ns,latency_ns,status,error"

// WriteCSV writes one row per request, in the order they were sent:
// start_unix_ns (wall clock), latency_ns, status (0 without a response)
// and error (empty unless the request failed without a status, or its
// body could not be read).
func (r *Result) WriteCSV(w io.Writer) error {
	order := make([]int, len(r.Records))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(r.Records[a].Start, r.Records[b].Start) })
	cw := csv.NewWriter(w)
	if _, err := io.WriteString(w, CSVHeader+"\n"); err != nil {
		return err
	}
	for _, i := range order {
		rec := r.Records[i]
		errText := ""
		if rec.Err != nil {
			errText = rec.Err.Error()
		}
		row := []string{
			strconv.FormatInt(r.Start.Add(rec.Start).UnixNano(), 10),
			strconv.FormatInt(int64(rec.Latency), 10),
			strconv.Itoa(rec.Status),
			errText,
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
