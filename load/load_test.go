package load

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testConfig is a short run against target.
func testConfig(target string, rate float64, d time.Duration) Config {
	c := DefaultConfig()
	c.Target, c.Rate, c.Duration = target, rate, d
	return c
}

func run(t *testing.T, cfg Config) *Result {
	t.Helper()
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sent %d ok %d backpressure %d failed %d (%v) p99 %v max %v stall %v at %v lag %v",
		res.Sent, res.OK, res.Backpressure, res.Failed, res.Errors, res.P99, res.Max, res.Stall, res.StallAt, res.MaxLag)
	return res
}

// concurrency tracks how many handlers run at once.
type concurrency struct {
	now, peak atomic.Int64
}

func (c *concurrency) enter() {
	n := c.now.Add(1)
	for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
	}
}

func (c *concurrency) leave() { c.now.Add(-1) }

func TestRunReportsStallWhereItHappened(t *testing.T) {
	const hold = 300 * time.Millisecond
	var mu sync.Mutex
	var first, from, until time.Time // guarded by mu: the first arrival and the stall
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		mu.Lock()
		if first.IsZero() {
			first = now
		}
		if from.IsZero() && now.Sub(first) >= 400*time.Millisecond {
			from, until = now, now.Add(hold)
		}
		end := until
		mu.Unlock()
		// Every request arriving during the stall is answered at its end,
		// as when a proxy holds requests through a cutover.
		time.Sleep(time.Until(end))
	}))
	defer srv.Close()

	res := run(t, testConfig(srv.URL, 200, time.Second))
	if res.Sent != 200 || res.OK != 200 || res.Failed != 0 {
		t.Fatalf("sent %d ok %d failed %d, want 200 ok", res.Sent, res.OK, res.Failed)
	}
	mu.Lock()
	stallFrom, stallUntil := from.Sub(res.Start), until.Sub(res.Start)
	mu.Unlock()
	if res.Stall < hold {
		t.Errorf("stall %v, want at least the server's %v", res.Stall, hold)
	}
	if res.StallAt+res.Stall < stallUntil {
		t.Errorf("stall ends at %v, before the server resumed at %v", res.StallAt+res.Stall, stallUntil)
	}
	if d := res.StallAt - stallFrom; d < -100*time.Millisecond || d > 100*time.Millisecond {
		t.Errorf("stall starts at %v, want about %v where the server stalled", res.StallAt, stallFrom)
	}
}

func TestRunIsOpenLoop(t *testing.T) {
	var c concurrency
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		c.enter()
		defer c.leave()
		time.Sleep(100 * time.Millisecond)
	}))
	defer srv.Close()

	res := run(t, testConfig(srv.URL, 200, time.Second))
	if res.Sent != 200 || res.OK != 200 || got.Load() != 200 {
		t.Fatalf("sent %d, ok %d, server saw %d; want 200 each however slow the server", res.Sent, res.OK, got.Load())
	}
	// 200/s × 100 ms is about 20 at once; a closed loop would keep 1 (or
	// its worker count) and fall behind.
	if p := c.peak.Load(); p < 10 {
		t.Fatalf("server saw at most %d requests at once, want about 20: the schedule waited for responses", p)
	}
	if res.P50 < 100*time.Millisecond {
		t.Fatalf("p50 %v below the server's 100 ms", res.P50)
	}
}

func TestRunCountsBackpressureAndFailures(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) % 4 {
		case 0:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
		case 1:
			w.WriteHeader(http.StatusServiceUnavailable)
		case 2:
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()

	res := run(t, testConfig(srv.URL, 100, 400*time.Millisecond))
	got := [...]int{res.Sent, res.OK, res.Backpressure, res.BackpressureRetryAfter, res.Failed}
	if want := [...]int{40, 10, 20, 10, 10}; got != want {
		t.Fatalf("sent, ok, 503, 503 with Retry-After, failed = %v, want %v", got, want)
	}
	if len(res.Errors) != 1 || res.Errors[0] != (ErrorSample{"HTTP 500 Internal Server Error", 10}) {
		t.Fatalf("errors %v, want 10 × HTTP 500", res.Errors)
	}
}

func TestRunOverloadFailsInsteadOfWaiting(t *testing.T) {
	var c concurrency
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.enter()
		defer c.leave()
		time.Sleep(500 * time.Millisecond) // longer than the run
	}))
	defer srv.Close()

	cfg := testConfig(srv.URL, 100, 300*time.Millisecond)
	cfg.MaxInflight = 3
	res := run(t, cfg)
	if res.Sent != 30 || res.OK != 3 || res.Overloaded != 27 || res.Failed != 27 {
		t.Fatalf("sent %d ok %d overloaded %d failed %d, want 30, 3, 27, 27", res.Sent, res.OK, res.Overloaded, res.Failed)
	}
	for _, rec := range res.Records[3:] {
		if !errors.Is(rec.Err, ErrOverloaded) {
			t.Fatalf("record %+v, want ErrOverloaded", rec)
		}
	}
	if p := c.peak.Load(); p > 3 {
		t.Fatalf("server saw %d at once, want at most max-inflight 3", p)
	}
}

func TestRunTimesOutRequests(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers
	}))
	defer srv.Close()

	cfg := testConfig(srv.URL, 20, 200*time.Millisecond)
	cfg.Timeout = 100 * time.Millisecond
	res := run(t, cfg)
	if res.Sent != 4 || res.Failed != 4 || res.OK != 0 {
		t.Fatalf("sent %d failed %d ok %d, want 4 timeouts", res.Sent, res.Failed, res.OK)
	}
	for _, rec := range res.Records {
		if !errors.Is(rec.Err, ErrTimeout) || rec.Latency < cfg.Timeout || rec.Status != 0 {
			t.Fatalf("record %+v, want ErrTimeout after %v", rec, cfg.Timeout)
		}
	}
	if res.Stall != res.Window {
		t.Fatalf("stall %v, want the whole window %v: nothing succeeded", res.Stall, res.Window)
	}
}

func TestRunTransportErrorIsFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now

	res := run(t, testConfig("http://"+addr+"/", 50, 100*time.Millisecond))
	if res.Sent != 5 || res.Failed != 5 || len(res.Errors) == 0 {
		t.Fatalf("sent %d failed %d errors %v, want 5 connection failures", res.Sent, res.Failed, res.Errors)
	}
}

func TestRunCancelStopsEarlyAndReports(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
	}))
	defer srv.Close()

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	time.AfterFunc(300*time.Millisecond, cancel)
	res, err := Run(ctx, testConfig(srv.URL, 100, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.Window >= 10*time.Second || res.Sent == 0 || res.Sent >= 1000 {
		t.Fatalf("interrupted %v, window %v, sent %d; want a partial run", res.Interrupted, res.Window, res.Sent)
	}
	// Requests in flight at the cancel still finish and count.
	if res.Failed != 0 || res.OK != res.Sent {
		t.Fatalf("ok %d of %d, failed %d (%v); want every sent request answered", res.OK, res.Sent, res.Failed, res.Errors)
	}
}

func TestRunKeepsConnectionsAlive(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	res := run(t, testConfig(srv.URL, 200, 500*time.Millisecond))
	if res.OK != 100 || conns.Load()*4 > int64(res.Sent) {
		t.Fatalf("%d ok over %d connections; want keep-alive reuse", res.OK, conns.Load())
	}
}

func TestRunHTTP2(t *testing.T) {
	var h1, h2 atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 {
			h2.Add(1)
		} else {
			h1.Add(1)
		}
	})
	t.Run("tls", func(t *testing.T) {
		h1.Store(0)
		h2.Store(0)
		srv := httptest.NewUnstartedServer(h)
		srv.EnableHTTP2 = true
		srv.StartTLS()
		defer srv.Close()
		pool := x509.NewCertPool()
		pool.AddCert(srv.Certificate())
		cfg := testConfig(srv.URL, 50, 200*time.Millisecond)
		cfg.TLS = &tls.Config{RootCAs: pool}
		if res := run(t, cfg); res.OK != 10 || h2.Load() != 10 {
			t.Fatalf("ok %d, HTTP/2 %d, HTTP/1 %d; want 10 over HTTP/2", res.OK, h2.Load(), h1.Load())
		}
	})
	t.Run("h2c", func(t *testing.T) {
		h1.Store(0)
		h2.Store(0)
		srv := httptest.NewUnstartedServer(h)
		srv.Config.Protocols = new(http.Protocols)
		srv.Config.Protocols.SetUnencryptedHTTP2(true)
		srv.Start()
		defer srv.Close()
		cfg := testConfig(srv.URL, 50, 200*time.Millisecond)
		cfg.H2C = true
		if res := run(t, cfg); res.OK != 10 || h2.Load() != 10 {
			t.Fatalf("ok %d, HTTP/2 %d, HTTP/1 %d; want 10 over h2c", res.OK, h2.Load(), h1.Load())
		}
	})
}

func TestValidate(t *testing.T) {
	good := testConfig("http://127.0.0.1:8080/x", 100, time.Second)
	cases := []struct {
		name    string
		edit    func(*Config)
		setting string
	}{
		{"no target", func(c *Config) { c.Target = "" }, "target"},
		{"malformed URL", func(c *Config) { c.Target = "http://[::1" }, "target"},
		{"relative URL", func(c *Config) { c.Target = "/path" }, "target"},
		{"unsupported scheme", func(c *Config) { c.Target = "ftp://host/" }, "target"},
		{"no host", func(c *Config) { c.Target = "http:///x" }, "target"},
		{"zero rate", func(c *Config) { c.Rate = 0 }, "rate"},
		{"negative rate", func(c *Config) { c.Rate = -5 }, "rate"},
		{"too many requests", func(c *Config) { c.Rate, c.Duration = 1e6, time.Hour }, "rate"},
		{"zero duration", func(c *Config) { c.Duration = 0 }, "duration"},
		{"zero timeout", func(c *Config) { c.Timeout = 0 }, "timeout"},
		{"zero max-inflight", func(c *Config) { c.MaxInflight = 0 }, "max-inflight"},
		{"bad method", func(c *Config) { c.Method = "GE T" }, "method"},
		{"h2c over https", func(c *Config) { c.Target, c.H2C = "https://host/", true }, "h2c"},
	}
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := good
			c.edit(&cfg)
			err := cfg.Validate()
			var ce *ConfigError
			if !errors.Is(err, ErrBadConfig) || !errors.As(err, &ce) || ce.Setting != c.setting {
				t.Fatalf("Validate() = %v, want a ConfigError naming %s", err, c.setting)
			}
			if _, err := Run(t.Context(), cfg); !errors.Is(err, ErrBadConfig) {
				t.Fatalf("Run accepted it: %v", err)
			}
		})
	}
}

func TestScheduleSize(t *testing.T) {
	cases := []struct {
		rate float64
		d    time.Duration
		want int
	}{
		{200, time.Second, 200},
		{3, time.Second, 3},
		{0.5, time.Second, 1},
		{1000, 1000500 * time.Microsecond, 1001},
		{7, 2 * time.Second, 14},
		{1e6, time.Millisecond, 1000},
	}
	for _, c := range cases {
		cfg := Config{Rate: c.rate, Duration: c.d}
		if got := cfg.requests(); got != c.want {
			t.Errorf("rate %v for %v: %d requests, want %d", c.rate, c.d, got, c.want)
		}
		if n := cfg.requests(); cfg.due(n-1) >= c.d || cfg.due(n) < c.d {
			t.Errorf("rate %v for %v: request %d due at %v is outside the window", c.rate, c.d, n-1, cfg.due(n-1))
		}
	}
}
