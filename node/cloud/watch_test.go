package cloud

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/node/cloud/emulate"
)

// clearEndpointVars empties every cloud's endpoint variable for the test,
// so that nothing from the environment points a watcher anywhere.
func clearEndpointVars(t testing.TB) {
	for _, v := range endpointVar {
		t.Setenv(v, "")
	}
	t.Setenv("AWS_EC2_METADATA_DISABLED", "")
}

// testConfig is a watcher config for endpoint with an empty DMI directory,
// so that only the endpoint can make it dial, and logs into t.Log.
func testConfig(t testing.TB, cloud, endpoint string) WatchConfig {
	cfg := DefaultWatchConfig(cloud)
	cfg.Endpoint = endpoint
	cfg.DMIDir = t.TempDir()
	cfg.PollInterval = 20 * time.Millisecond
	cfg.MaxBackoff = 200 * time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return cfg
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// startEmulator serves cloud's emulator on loopback until the test ends.
func startEmulator(t testing.TB, cloud string) (*emulate.Emulator, string) {
	t.Helper()
	em, err := emulate.New(emulate.DefaultConfig(cloud))
	if err != nil {
		t.Fatal(err)
	}
	url, err := em.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { em.Close() })
	return em, url
}

// runWatch runs w.Watch until the test ends (or stop is called) and
// returns the notices channel and a stop function that returns Watch's
// error.
func runWatch(t testing.TB, w Watcher) (<-chan Notice, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan Notice, 16)
	done := make(chan error, 1)
	go func() { done <- w.Watch(ctx, out) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Error("Watch did not return within 10s of its context ending")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return out, stop
}

// next returns the next notice, failing the test after within.
func next(t testing.TB, out <-chan Notice, within time.Duration) Notice {
	t.Helper()
	select {
	case n := <-out:
		return n
	case <-time.After(within):
		t.Fatalf("no notice within %v", within)
		return Notice{}
	}
}

// near reports whether a and b are within d of each other.
func near(a, b time.Time, d time.Duration) bool {
	diff := a.Sub(b)
	return diff < d && diff > -d
}

// checkIdentity compares what w says with the emulator's config.
func checkIdentity(t *testing.T, w Watcher, cloud string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := w.Identity(ctx)
	if err != nil {
		t.Fatalf("Identity: %v", err)
	}
	c := emulate.DefaultConfig(cloud)
	want := Identity{Cloud: cloud, Region: c.Region, Zone: c.Zone, InstanceID: c.InstanceID,
		InstanceType: c.InstanceType, Lifecycle: c.Lifecycle}
	if got != want {
		t.Fatalf("Identity = %+v, want %+v", got, want)
	}
}

// expectPreempt issues a preemption and checks the notice that arrives.
func expectPreempt(t *testing.T, em *emulate.Emulator, out <-chan Notice, cloud string, within time.Duration) Notice {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second).Truncate(time.Second)
	if err := em.Notice(emulate.KindPreempt, deadline); err != nil {
		t.Fatal(err)
	}
	n := next(t, out, within)
	if n.Cloud != cloud || n.Kind != KindPreempt || !n.Doomed() {
		t.Fatalf("notice %+v, want a doomed %s preempt", n, cloud)
	}
	if !near(n.Deadline, deadline, 2*time.Second) {
		t.Fatalf("deadline %v, want about %v", n.Deadline, deadline)
	}
	if n.SeenAt.IsZero() || n.Reason == "" {
		t.Fatalf("notice %+v lacks SeenAt or Reason", n)
	}
	return n
}

// refusedEndpoint is a loopback address nothing listens on.
func refusedEndpoint(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// failureCounter is a slog handler that signals each retried failure.
type failureCounter struct {
	slog.Handler
	failed chan struct{}
}

func (f failureCounter) Enabled(context.Context, slog.Level) bool { return true }

func (f failureCounter) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "metadata read failed; retrying" {
		select {
		case f.failed <- struct{}{}:
		default:
		}
	}
	if r.Level >= slog.LevelInfo {
		return f.Handler.Handle(ctx, r)
	}
	return nil
}

func (f failureCounter) WithAttrs(a []slog.Attr) slog.Handler {
	return failureCounter{f.Handler.WithAttrs(a), f.failed}
}

func (f failureCounter) WithGroup(g string) slog.Handler {
	return failureCounter{f.Handler.WithGroup(g), f.failed}
}

// checkOwnGoroutines fails if any goroutine other than a test's runs code
// of this package: once Watch has returned, none of its own may be left.
// A goroutine that has just returned may still be listed on its way out
// (runtime.goexit), so the check looks again for a while before it fails.
func checkOwnGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		var left []string
		buf := make([]byte, 1<<20)
		for g := range strings.SplitSeq(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, "lifeboat/node/cloud.") && !strings.Contains(g, "lifeboat/node/cloud.Test") {
				left = append(left, g)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, g := range left {
				t.Errorf("goroutine left running:\n%s", g)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitGoroutines waits until no more than base goroutines run.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testRefused checks that a watcher whose endpoint refuses connections
// keeps retrying, returns ctx's error when ctx ends, and leaves no
// goroutine behind.
func testRefused(t *testing.T, cloud string) {
	clearEndpointVars(t)
	cfg := testConfig(t, cloud, refusedEndpoint(t))
	failed := make(chan struct{}, 1)
	cfg.Logger = slog.New(failureCounter{cfg.Logger.Handler(), failed})
	w, err := NewWatcher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Watch(ctx, make(chan Notice)) }()
	for range 2 {
		select {
		case <-failed:
		case err := <-done:
			t.Fatalf("Watch returned %v while its context was live", err)
		case <-time.After(20 * time.Second):
			t.Fatal("no retried failure logged within 20s")
		}
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Watch = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return within 5s of its context ending")
	}
	checkOwnGoroutines(t)
	waitGoroutines(t, base)
}

// testStandardVariable checks that the cloud's own variable, with an empty
// cfg.Endpoint, points the watcher at the emulator.
func testStandardVariable(t *testing.T, cloud string, within time.Duration) {
	clearEndpointVars(t)
	em, url := startEmulator(t, cloud)
	name, value, _ := strings.Cut(emulate.EnvLine(cloud, url), "=")
	if name != endpointVar[cloud] {
		t.Fatalf("emulator's variable %q, watcher reads %q", name, endpointVar[cloud])
	}
	t.Setenv(name, value)
	w, err := NewWatcher(testConfig(t, cloud, ""))
	if err != nil {
		t.Fatal(err)
	}
	checkIdentity(t, w, cloud)
	out, _ := runWatch(t, w)
	expectPreempt(t, em, out, cloud, within)
}

func TestWatchConfigValidate(t *testing.T) {
	ok := DefaultWatchConfig(AWS)
	cases := []struct {
		name  string
		edit  func(*WatchConfig)
		valid bool
	}{
		{"default", func(*WatchConfig) {}, true},
		{"explicit endpoint", func(c *WatchConfig) { c.Endpoint = "http://127.0.0.1:1338" }, true},
		{"bare host:port", func(c *WatchConfig) { c.Endpoint = "127.0.0.1:8080" }, true},
		{"no cloud", func(c *WatchConfig) { c.Cloud = "" }, false},
		{"other cloud", func(c *WatchConfig) { c.Cloud = "oracle" }, false},
		{"zero poll", func(c *WatchConfig) { c.PollInterval = 0 }, false},
		{"backoff below poll", func(c *WatchConfig) { c.MaxBackoff = c.PollInterval / 2 }, false},
		{"zero request timeout", func(c *WatchConfig) { c.RequestTimeout = 0 }, false},
		{"no dmi dir", func(c *WatchConfig) { c.DMIDir = "" }, false},
		{"nil logger", func(c *WatchConfig) { c.Logger = nil }, false},
		{"nil clock", func(c *WatchConfig) { c.Now = nil }, false},
		{"endpoint with path", func(c *WatchConfig) { c.Endpoint = "http://127.0.0.1:1/latest" }, false},
		{"endpoint ftp", func(c *WatchConfig) { c.Endpoint = "ftp://127.0.0.1:1" }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := ok
			c.edit(&cfg)
			if err := cfg.Validate(); (err == nil) != c.valid {
				t.Fatalf("Validate = %v, want valid=%v", err, c.valid)
			}
		})
	}
}

func TestNewWatcherUnknownCloud(t *testing.T) {
	for _, cloud := range []string{"", "oracle", "AWS"} {
		cfg := DefaultWatchConfig(cloud)
		if _, err := NewWatcher(cfg); !errors.Is(err, ErrUnknownCloud) {
			t.Errorf("NewWatcher(%q) = %v, want ErrUnknownCloud", cloud, err)
		}
	}
}

// A host that is not in a cloud, with no endpoint anywhere, gets no
// watcher: nothing may ever be sent to the link-local address.
func TestNewWatcherRefusesUndetectedCloud(t *testing.T) {
	clearEndpointVars(t)
	for _, cloud := range []string{AWS, GCP, Azure} {
		cfg := testConfig(t, cloud, "")
		if w, err := NewWatcher(cfg); !errors.Is(err, ErrNotDetected) {
			t.Errorf("%s: NewWatcher = %v, %v; want ErrNotDetected", cloud, w, err)
		}
	}
	// Another cloud's variable does not make this one detected.
	t.Setenv("GCE_METADATA_HOST", "127.0.0.1:1")
	if _, err := NewWatcher(testConfig(t, AWS, "")); !errors.Is(err, ErrNotDetected) {
		t.Errorf("aws with GCE_METADATA_HOST set: %v, want ErrNotDetected", err)
	}
}

func TestResolveEndpoint(t *testing.T) {
	clearEndpointVars(t)
	amazon := t.TempDir()
	if err := os.WriteFile(filepath.Join(amazon, "sys_vendor"), []byte("Amazon EC2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, AWS, "")
	cfg.DMIDir = amazon
	u, err := resolveEndpoint(cfg)
	if err != nil || u.String() != metadataAddress {
		t.Fatalf("detected AWS: %v, %v; want %s", u, err, metadataAddress)
	}
	cfg.Cloud = GCP
	if _, err := resolveEndpoint(cfg); !errors.Is(err, ErrNotDetected) {
		t.Fatalf("GCP on an Amazon host: %v, want ErrNotDetected", err)
	}
	t.Setenv("GCE_METADATA_HOST", "127.0.0.1:9")
	if u, err := resolveEndpoint(cfg); err != nil || u.Host != "127.0.0.1:9" {
		t.Fatalf("GCE_METADATA_HOST: %v, %v", u, err)
	}
	cfg.Endpoint = "http://127.0.0.1:10"
	if u, err := resolveEndpoint(cfg); err != nil || u.Host != "127.0.0.1:10" {
		t.Fatalf("explicit endpoint wins: %v, %v", u, err)
	}
}

// roundTripFunc is an http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestGuardRefusesOtherHosts(t *testing.T) {
	var sent []string
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent = append(sent, r.URL.Host)
		return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
	})
	g := &guard{host: "127.0.0.1:9", base: base}
	for _, u := range []string{"http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:10/"} {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if _, err := g.RoundTrip(req); !errors.Is(err, ErrUnexpectedHost) {
			t.Errorf("%s: %v, want ErrUnexpectedHost", u, err)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:9/x", nil)
	if _, err := g.RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	rewrite := &guard{host: "127.0.0.1:9", rewrite: true, base: base}
	req, _ = http.NewRequest(http.MethodGet, "http://169.254.169.254/computeMetadata/v1/", nil)
	if _, err := rewrite.RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	if req.URL.Host != "169.254.169.254" {
		t.Errorf("rewrite modified the caller's request")
	}
	if want := []string{"127.0.0.1:9", "127.0.0.1:9"}; !slices.Equal(sent, want) {
		t.Fatalf("sent to %v, want %v", sent, want)
	}
}

// TestTracker checks tracker against a reference model: a notice is new
// when its key was absent from the previous poll.
func TestTracker(t *testing.T) {
	polls := [][]string{
		{}, {"a"}, {"a"}, {"a", "b"}, {"b"}, {"a", "b"}, {}, {"a"}, {"a2"}, {"a2", "a2"},
	}
	want := [][]string{
		nil, {"a"}, nil, {"b"}, nil, {"a"}, nil, {"a"}, {"a2"}, nil,
	}
	var tr tracker
	for i, keys := range polls {
		var s []sighting
		for _, k := range keys {
			s = append(s, sighting{key: k, notice: Notice{Reason: k}})
		}
		var got []string
		for _, n := range tr.fresh(s) {
			got = append(got, n.Reason)
		}
		if !slices.Equal(got, want[i]) {
			t.Errorf("poll %d %v: fresh %v, want %v", i, keys, got, want[i])
		}
	}
}

func TestBackoff(t *testing.T) {
	b := backoff{min: 10 * time.Millisecond, max: 70 * time.Millisecond}
	var got []time.Duration
	for range 5 {
		got = append(got, b.next())
	}
	want := []time.Duration{10, 20, 40, 70, 70}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if !slices.Equal(got, want) {
		t.Fatalf("backoff %v, want %v", got, want)
	}
	b.reset()
	if d := b.next(); d != b.min {
		t.Fatalf("after reset %v, want %v", d, b.min)
	}
}

func TestNoticeDoomed(t *testing.T) {
	for kind, doomed := range map[string]bool{KindPreempt: true, KindRebalance: false, KindMaintenance: true, KindTerminate: true} {
		if got := (Notice{Kind: kind}).Doomed(); got != doomed {
			t.Errorf("%s: Doomed = %v, want %v", kind, got, doomed)
		}
	}
}
