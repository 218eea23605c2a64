// Package load is lifeboat's measuring instrument: an open-loop,
// constant-rate HTTP load generator whose report (failed requests, the
// client-visible stall, p50/p99/p99.9/max latency) backs the project's
// zero-downtime claims.
//
// Run sends request i at start + i/Rate whatever happened to the earlier
// ones, each in its own goroutine, so a slow or stalled server cannot slow
// the schedule down and hide its own latency ("coordinated omission"). When
// MaxInflight requests are already out, a due request is not queued but
// recorded as failed with ErrOverloaded: queueing would hide latency too.
//
// The pacing is a timer loop written here, not vegeta's attacker
// (github.com/tsenart/vegeta/v12 v12.13.0 lib): once its MaxWorkers are
// busy, its schedule blocks on the next free worker and then catches up,
// which is exactly the coordinated omission this package must not commit
// and cannot be switched off; and its module requires some twenty others
// (prometheus/prometheus, easyjson, tdigest …) for what is one line of
// arithmetic here (due = i/Rate).
// The percentiles come from github.com/HdrHistogram/hdrhistogram-go; see
// NewResult.
//
// Run does the I/O; everything it reports is computed by NewResult from
// the per-request Records, which is pure and usable on its own.
package load

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// MaxRequests bounds Rate × Duration: Run keeps one Record (56 bytes,
// allocated up front) per request so that the report and the CSV are
// exact, which is 560 MB at this bound.
const MaxRequests = 10_000_000

var (
	// ErrBadConfig is wrapped by every error Validate returns.
	ErrBadConfig = errors.New("load: bad config")
	// ErrOverloaded marks a request that was due while MaxInflight were
	// already in flight; it was not sent and counts as failed.
	ErrOverloaded = errors.New("client overloaded")
	// ErrTimeout marks a request that got no complete response within
	// Config.Timeout.
	ErrTimeout = errors.New("timeout")
)

// ConfigError is a bad Config setting. Setting is spelled the way the
// `lifeboat load` flag is (rate, duration, target, max-inflight …), so
// the CLI can point at the flag; Msg starts with the bad value.
type ConfigError struct {
	// Setting is the flag's name without dashes.
	Setting string
	// Msg is the bad value and what is wanted instead.
	Msg string
}

// Error returns "setting value: what is wrong".
func (e *ConfigError) Error() string { return e.Setting + " " + e.Msg }

// Unwrap returns ErrBadConfig.
func (e *ConfigError) Unwrap() error { return ErrBadConfig }

// Config is one run.
type Config struct {
	// Target is the absolute http:// or https:// URL every request goes to.
	Target string
	// Method is the HTTP method; requests carry no body.
	Method string
	// Rate is how many requests per second the schedule sends.
	Rate float64
	// Duration is how long the schedule sends: requests are due at
	// i/Rate for every i with i/Rate < Duration.
	Duration time.Duration
	// Timeout bounds each request, from its send to the end of its
	// response body, including the ones still in flight when Duration
	// ends or ctx is cancelled.
	Timeout time.Duration
	// MaxInflight caps concurrent requests (and so goroutines and
	// connections); a request due while MaxInflight are out fails with
	// ErrOverloaded instead of waiting.
	MaxInflight int
	// H2C speaks HTTP/2 without TLS ("prior knowledge") to an http://
	// target. Otherwise http:// targets get HTTP/1.1 with keep-alive and
	// https:// targets HTTP/2 when TLS negotiates it, else HTTP/1.1.
	H2C bool
	// TLS configures https targets (RootCAs, ServerName); nil uses the
	// system roots.
	TLS *tls.Config
}

// DefaultConfig is 100 requests per second of GET for 10 s, 5 s timeout,
// at most 10,000 in flight. Target is left empty: there is no sensible
// default.
func DefaultConfig() Config {
	return Config{Method: http.MethodGet, Rate: 100, Duration: 10 * time.Second, Timeout: 5 * time.Second, MaxInflight: 10_000}
}

// Validate names the first setting that is missing or out of range.
func (c Config) Validate() error {
	bad := func(setting, format string, a ...any) error {
		return &ConfigError{Setting: setting, Msg: fmt.Sprintf(format, a...)}
	}
	if err := c.validateTarget(); err != nil {
		return err
	}
	switch {
	case c.Method == "":
		return bad("method", `"": want an HTTP method such as GET`)
	case !(c.Rate > 0) || math.IsInf(c.Rate, 0):
		return bad("rate", "%v: want a number of requests per second above 0", c.Rate)
	case c.Duration <= 0:
		return bad("duration", "%v: want a duration above 0 such as 10s", c.Duration)
	case c.Timeout <= 0:
		return bad("timeout", "%v: want a duration above 0 such as 5s", c.Timeout)
	case c.MaxInflight < 1:
		return bad("max-inflight", "%d: want at least 1", c.MaxInflight)
	case c.Rate*c.Duration.Seconds() > MaxRequests:
		return bad("rate", "%v for %v: %.0f requests, more than the %d one run records; lower the rate or the duration",
			c.Rate, c.Duration, c.Rate*c.Duration.Seconds(), MaxRequests)
	}
	if _, err := http.NewRequest(c.Method, "http://localhost/", nil); err != nil {
		return bad("method", "%q: not a valid HTTP method", c.Method)
	}
	return nil
}

func (c Config) validateTarget() error {
	bad := func(format string, a ...any) error {
		return &ConfigError{Setting: "target", Msg: fmt.Sprintf("%q: ", c.Target) + fmt.Sprintf(format, a...)}
	}
	if c.Target == "" {
		return &ConfigError{Setting: "target", Msg: "is required: the URL to send requests to, such as http://127.0.0.1:8080/"}
	}
	u, err := url.Parse(c.Target)
	switch {
	case err != nil:
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return bad("not a URL (%v): want one such as http://127.0.0.1:8080/", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return bad("unsupported scheme %q: want http or https", u.Scheme)
	case u.Host == "":
		return bad("no host: want a URL such as %s://127.0.0.1:8080/", u.Scheme)
	case c.H2C && u.Scheme != "http":
		return &ConfigError{Setting: "h2c", Msg: fmt.Sprintf("with target %q: h2c needs an http:// target (https negotiates HTTP/2 itself)", c.Target)}
	}
	return nil
}

// requests is how many requests the schedule sends: every i with
// due(i) < Duration.
func (c Config) requests() int {
	n := int(math.Ceil(c.Rate * c.Duration.Seconds()))
	for n > 0 && c.due(n-1) >= c.Duration {
		n--
	}
	for c.due(n) < c.Duration {
		n++
	}
	return n
}

// due is when request i is scheduled, from the run's start.
func (c Config) due(i int) time.Duration {
	return time.Duration(float64(i) * float64(time.Second) / c.Rate)
}

// Run sends cfg.Rate requests per second to cfg.Target for cfg.Duration
// and returns the report. It returns an error only when cfg is invalid
// (a *ConfigError wrapping ErrBadConfig); failed requests are in the
// Result.
//
// Cancelling ctx stops the schedule early; the requests already sent
// still get up to cfg.Timeout so that they are counted honestly, and the
// Result says Interrupted. Run returns once every request it sent has
// finished and its connections are closed.
//
// Run measures real time on the wall clock (monotonic reading): it is the
// I/O edge, so it has no injected clock.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tmpl, err := http.NewRequestWithContext(context.WithoutCancel(ctx), cfg.Method, cfg.Target, nil)
	if err != nil {
		return nil, &ConfigError{Setting: "target", Msg: fmt.Sprintf("%q: %v", cfg.Target, err)}
	}
	tmpl.Header.Set("User-Agent", "lifeboat-load")
	tr := newTransport(cfg)
	defer tr.CloseIdleConnections()
	a := &attack{
		cfg:        cfg,
		client:     &http.Client{Transport: tr, CheckRedirect: noRedirect},
		tmpl:       tmpl,
		recs:       make([]Record, cfg.requests()),
		overloaded: fmt.Errorf("%w: %d requests already in flight (max-inflight)", ErrOverloaded, cfg.MaxInflight),
		timeout:    fmt.Errorf("%w: no complete response within %v", ErrTimeout, cfg.Timeout),
		start:      time.Now(),
	}
	n, window, interrupted := a.schedule(ctx)
	a.wg.Wait()
	res := NewResult(a.start, window, a.recs[:n])
	res.Target, res.Method, res.Rate, res.Duration, res.Interrupted = cfg.Target, cfg.Method, cfg.Rate, cfg.Duration, interrupted
	return res, nil
}

// noRedirect makes a 3xx the response: following it would measure
// another URL, and a redirected target is a misconfiguration to report.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// newTransport is the standard transport with one idle connection kept
// per possible in-flight request (the default of 2 per host would make
// most requests dial), no proxy (the target is what is measured) and
// HTTP/2 over TLS when the server offers it.
func newTransport(cfg Config) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxIdleConns = cfg.MaxInflight
	tr.MaxIdleConnsPerHost = cfg.MaxInflight
	tr.ForceAttemptHTTP2 = true
	if cfg.TLS != nil {
		tr.TLSClientConfig = cfg.TLS.Clone()
	}
	if cfg.H2C {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		tr.Protocols = &p
	}
	return tr
}

// attack is one run in progress. The schedule goroutine (Run's) writes
// the records of requests it does not send; the goroutine of request i
// writes recs[i]; Run reads recs after wg.Wait.
type attack struct {
	cfg        Config
	client     *http.Client
	tmpl       *http.Request // cloned per request with its own deadline
	recs       []Record
	overloaded error // the Err of requests refused by MaxInflight
	timeout    error // the Err of requests that hit Timeout
	start      time.Time
	inflight   atomic.Int64
	wg         sync.WaitGroup // one per request goroutine
}

// schedule sends the requests at their due times until all are sent or
// ctx is done. It returns how many it sent (or refused), how long it
// ran, and whether ctx cut it short.
func (a *attack) schedule(ctx context.Context) (n int, window time.Duration, interrupted bool) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for i := range a.recs {
		due := a.cfg.due(i)
		if wait := due - time.Since(a.start); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return i, min(time.Since(a.start), a.cfg.Duration), true
			}
		} else if ctx.Err() != nil {
			return i, min(time.Since(a.start), a.cfg.Duration), true
		}
		a.fire(i, due)
	}
	return len(a.recs), a.cfg.Duration, false
}

// fire sends request i in its own goroutine, or records it as refused
// when MaxInflight are out.
func (a *attack) fire(i int, due time.Duration) {
	if a.inflight.Load() >= int64(a.cfg.MaxInflight) {
		a.recs[i] = Record{Due: due, Start: time.Since(a.start), Err: a.overloaded}
		return
	}
	a.inflight.Add(1)
	a.wg.Add(1)
	go a.do(i, due)
}

// do sends request i, reads its response body to the end (so that the
// connection is reused) and records the outcome.
func (a *attack) do(i int, due time.Duration) {
	defer a.wg.Done()
	defer a.inflight.Add(-1)
	ctx, cancel := context.WithTimeout(a.tmpl.Context(), a.cfg.Timeout)
	defer cancel()
	rec := Record{Due: due, Start: time.Since(a.start)}
	resp, err := a.client.Do(a.tmpl.Clone(ctx))
	if err == nil {
		rec.Status = resp.StatusCode
		rec.RetryAfter = resp.Header.Get("Retry-After") != ""
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	rec.Latency = time.Since(a.start) - rec.Start
	if err != nil {
		rec.Err = err
		if errors.Is(err, context.DeadlineExceeded) {
			rec.Err = a.timeout
		}
	}
	a.recs[i] = rec
}
