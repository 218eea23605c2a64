package ingress

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// table is a Table the test sets.
type table struct {
	mu     sync.Mutex
	routes []Route
	ch     chan struct{}
}

func newTable(rs ...Route) *table { return &table{routes: rs, ch: make(chan struct{})} }

func (t *table) Routes() []Route {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Route(nil), t.routes...)
}

func (t *table) Changed() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ch
}

func (t *table) set(rs ...Route) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.routes = rs
	close(t.ch)
	t.ch = make(chan struct{})
}

// upstreams maps epoch -> service address, for Local.
type upstreams struct {
	mu sync.Mutex
	by map[uint64]string
}

func (u *upstreams) set(epoch uint64, addr string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.by == nil {
		u.by = map[uint64]string{}
	}
	u.by[epoch] = addr
}

func (u *upstreams) local(id string, epoch uint64) (string, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if a, ok := u.by[epoch]; ok && id == "svc" {
		return a, nil
	}
	return "", fmt.Errorf("%s is not held here under epoch %d", id, epoch)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// rig is an ingress on loopback acting as front and gate.
type rig struct {
	in   *Ingress
	tab  *table
	ups  *upstreams
	gate string
	port int
}

func (r *rig) url() string { return "http://127.0.0.1:" + strconv.Itoa(r.port) + "/" }

// route is the service's route to this rig's gate.
func (r *rig) route(epoch uint64, ready bool, upstream string) Route {
	return Route{Service: "svc", Listen: r.port, Protocol: "http", Budget: 2 * time.Second, Holder: "self",
		Gate: r.gate, Upstream: upstream, Epoch: epoch, Ready: ready}
}

func newRig(t *testing.T, edit func(*Config), first func(*rig) Route) *rig {
	t.Helper()
	r := &rig{tab: newTable(), ups: &upstreams{}, port: freePort(t)}
	r.gate = "127.0.0.1:" + strconv.Itoa(freePort(t))
	r.tab.routes = []Route{first(r)}
	cfg := DefaultConfig(r.gate)
	cfg.BindHost, cfg.Table, cfg.Local = "127.0.0.1", r.tab, r.ups.local
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	if edit != nil {
		edit(&cfg)
	}
	in, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.in = in
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	// Up once the front accepts.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(r.port))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the front never listened: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return r
}

// echo is a service that answers with the epoch header it got.
func echo(t *testing.T, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s epoch=%s body=%s", name, r.Header.Get(HeaderEpoch), b)
	}))
	t.Cleanup(s.Close)
	return s
}

func hostOf(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

func get(t *testing.T, c *http.Client, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestRoutesToTheHolderUnderItsEpoch(t *testing.T) {
	a := echo(t, "a")
	r := newRig(t, nil, func(r *rig) Route { return r.route(7, true, hostOf(a)) })
	r.ups.set(7, hostOf(a))
	code, body, _ := get(t, http.DefaultClient, r.url())
	if code != http.StatusOK || body != "a epoch=7 body=" {
		t.Fatalf("%d %q, want 200 from a under epoch 7", code, body)
	}
	// h2c with prior knowledge works too.
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	h2 := &http.Client{Transport: &http.Transport{Protocols: &p}}
	resp, err := h2.Get(r.url())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK {
		t.Fatalf("h2c: %s %d", resp.Proto, resp.StatusCode)
	}
}

// A move: the gate closes once the running request finished; requests
// arriving meanwhile are held, not failed, and go to the new holder.
func TestCutoverHoldsAndReleasesWithoutErrors(t *testing.T) {
	release := make(chan struct{})
	var started atomic.Int32
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
		<-release
		fmt.Fprint(w, "old")
	}))
	defer slow.Close()
	b := echo(t, "b")
	r := newRig(t, nil, func(r *rig) Route { return r.route(1, true, hostOf(slow)) })
	r.ups.set(1, hostOf(slow))

	results := make(chan string, 4)
	send := func() {
		resp, err := http.Get(r.url())
		if err != nil {
			results <- "error: " + err.Error()
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		results <- fmt.Sprintf("%d %s", resp.StatusCode, body)
	}
	go send() // in flight on the old holder
	for started.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	closed := make(chan error, 1)
	go func() { closed <- r.in.Close(context.Background(), "svc", 1) }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a request was running", err)
	case <-time.After(100 * time.Millisecond):
	}
	go send() // arrives after the close: held
	time.Sleep(100 * time.Millisecond)
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if got := <-results; got != "200 old" {
		t.Fatalf("the running request: %q, want 200 old", got)
	}
	select {
	case got := <-results:
		t.Fatalf("the held request answered %q before any new holder", got)
	case <-time.After(100 * time.Millisecond):
	}
	r.ups.set(2, hostOf(b))
	r.tab.set(r.route(2, true, hostOf(b)))
	if got := <-results; got != "200 b epoch=2 body=" {
		t.Fatalf("the held request: %q, want 200 from b under epoch 2", got)
	}
	if started.Load() != 1 {
		t.Fatalf("the old holder saw %d requests, want 1: a held one leaked to it", started.Load())
	}
}

// A new holder's gate holds a request while the service is starting
// there (ErrStarting) and passes it on the moment it is up.
func TestGateHoldsWhileTheServiceStarts(t *testing.T) {
	b := echo(t, "b")
	var up atomic.Bool
	r := newRig(t, func(c *Config) {
		c.Local = func(id string, epoch uint64) (string, error) {
			if !up.Load() {
				return "", fmt.Errorf("%w: restoring", ErrStarting)
			}
			return hostOf(b), nil
		}
	}, func(r *rig) Route { return r.route(3, true, hostOf(b)) })
	results := make(chan string, 1)
	go func() {
		code, body, _ := get(t, http.DefaultClient, r.url())
		results <- fmt.Sprintf("%d %s", code, body)
	}()
	select {
	case got := <-results:
		t.Fatalf("answered %q before the service was up", got)
	case <-time.After(150 * time.Millisecond):
	}
	up.Store(true)
	select {
	case got := <-results:
		if got != "200 b epoch=3 body=" {
			t.Fatalf("the held request: %q, want 200 from b under epoch 3", got)
		}
	case <-time.After(time.Second):
		t.Fatal("the held request was not passed on once the service was up")
	}
}

// For SlowStart after the service first answers under an epoch, the gate
// passes it one request until it answers, then one more at once with each
// answer, at most SlowStartConns; afterwards, all.
func TestGateSlowStart(t *testing.T) {
	var cur, most, beforeFirst, answered atomic.Int32
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if answered.Load() == 0 {
			beforeFirst.Add(1)
		}
		defer answered.Add(1)
		n := cur.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(50 * time.Millisecond)
		cur.Add(-1)
		fmt.Fprint(w, "ok")
	}))
	defer slow.Close()
	r := newRig(t, func(c *Config) { c.SlowStart, c.SlowStartConns = 400*time.Millisecond, 2 },
		func(r *rig) Route { return r.route(1, true, hostOf(slow)) })
	r.ups.set(1, hostOf(slow))
	burst := func(n int) {
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				if code, body, _ := get(t, http.DefaultClient, r.url()); code != http.StatusOK {
					t.Errorf("%d %q", code, body)
				}
			})
		}
		wg.Wait()
	}
	burst(6)
	if m := most.Load(); m != 2 {
		t.Fatalf("during the slow start the service had %d requests at once, want 2", m)
	}
	if n := beforeFirst.Load(); n != 1 {
		t.Fatalf("%d requests reached the service before its first answer, want 1: it starts with one", n)
	}
	time.Sleep(400 * time.Millisecond)
	most.Store(0)
	burst(6)
	if m := most.Load(); m <= 2 {
		t.Fatalf("after the slow start the service had at most %d requests at once, want more than 2", m)
	}
}

// TestGateChecksHealthOnce: a crowd of requests reaching a service that
// just started under an epoch dials it once between them (one health
// check), not once each: a freshly restored process would otherwise
// accept a crowd of connections before its first request.
func TestGateChecksHealthOnce(t *testing.T) {
	var conns, beforeFirst atomic.Int32
	var served atomic.Bool
	svc := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !served.Swap(true) {
			beforeFirst.Store(conns.Load())
		}
		fmt.Fprint(w, "ok")
	}))
	svc.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	svc.Start()
	defer svc.Close()
	r := newRig(t, nil, func(r *rig) Route { return r.route(1, true, hostOf(svc)) })
	r.ups.set(1, hostOf(svc))
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if code, body, _ := get(t, http.DefaultClient, r.url()); code != http.StatusOK {
				t.Errorf("%d %q", code, body)
			}
		})
	}
	wg.Wait()
	// The health check's connection and the first request's own.
	if n := beforeFirst.Load(); n > 2 {
		t.Fatalf("the service accepted %d connections before its first request, want at most 2: one health check", n)
	}
}

func TestOverCapacityAnswers503WithRetryAfter(t *testing.T) {
	r := newRig(t, func(c *Config) { c.MaxHeld = 2 }, func(r *rig) Route {
		rt := r.route(1, false, "")
		rt.Budget = 300 * time.Millisecond
		return rt
	})
	var wg sync.WaitGroup
	codes := make(chan string, 6)
	start := time.Now()
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(r.url())
			if err != nil {
				codes <- err.Error()
				return
			}
			resp.Body.Close()
			codes <- fmt.Sprintf("%d retry-after=%s", resp.StatusCode, resp.Header.Get("Retry-After"))
		}()
	}
	wg.Wait()
	close(codes)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("over capacity took %v: something hung", took)
	}
	for c := range codes {
		if c != "503 retry-after=1" {
			t.Errorf("got %q, want 503 with Retry-After", c)
		}
	}
}

// An idempotent request whose connection broke goes once more to the next
// holder; a POST without an Idempotency-Key does not.
func TestBrokenConnectionRetriedOnceWhenIdempotent(t *testing.T) {
	var hits atomic.Int32
	b := echo(t, "b")
	var r *rig
	dying := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		hits.Add(1)
		// The holder is taken: the next holder is ready, and this
		// connection breaks without an answer.
		r.ups.set(2, hostOf(b))
		r.tab.set(r.route(2, true, hostOf(b)))
		c, _, _ := w.(http.Hijacker).Hijack()
		c.Close()
	}))
	defer dying.Close()
	r = newRig(t, nil, func(r *rig) Route { return r.route(1, true, hostOf(dying)) })
	r.ups.set(1, hostOf(dying))
	code, body, _ := get(t, http.DefaultClient, r.url())
	if code != http.StatusOK || body != "b epoch=2 body=" {
		t.Fatalf("GET: %d %q, want 200 from b (retried once)", code, body)
	}

	r.tab.set(r.route(1, true, hostOf(dying)))
	resp, err := http.Post(r.url(), "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("POST: %d, want 502: it may have reached the service, it must not run twice", resp.StatusCode)
	}
	if hits.Load() != 2 {
		t.Fatalf("the dying holder saw %d requests, want 2", hits.Load())
	}
}

// Drain closes idle HTTP/1.1 connections and sends GOAWAY on HTTP/2 ones;
// requests still arriving are served.
func TestDrainMovesClientsAway(t *testing.T) {
	a := echo(t, "a")
	r := newRig(t, nil, func(r *rig) Route { return r.route(1, true, hostOf(a)) })
	r.ups.set(1, hostOf(a))
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	type client struct {
		name   string
		client *http.Client
	}
	clients := []client{
		{"http1", &http.Client{Transport: &http.Transport{}}},
		{"h2c", &http.Client{Transport: func() *http.Transport {
			var h2 http.Protocols
			h2.SetUnencryptedHTTP2(true)
			return &http.Transport{Protocols: &h2}
		}()}},
	}
	reused := func(tc client) bool {
		var got bool
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { got = i.Reused }})
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.url(), nil)
		resp, err := tc.client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", tc.name, resp.StatusCode)
		}
		return got
	}
	for _, tc := range clients {
		reused(tc)
		if !reused(tc) {
			t.Fatalf("%s: the connection was not kept before the drain", tc.name)
		}
	}
	r.in.Drain()
	time.Sleep(100 * time.Millisecond)
	for _, tc := range clients {
		if reused(tc) {
			t.Fatalf("%s: the client kept its connection across the drain", tc.name)
		}
		if reused(tc) {
			t.Fatalf("%s: a connection to a draining peer was kept", tc.name)
		}
	}
}

func TestTCPServiceHeldThenPiped(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				fmt.Fprintf(c, "echo %s", line)
			}()
		}
	}()
	r := newRig(t, nil, func(r *rig) Route {
		rt := r.route(1, false, ln.Addr().String())
		rt.Protocol = "tcp"
		return rt
	})
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(r.port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "hi\n")
	time.AfterFunc(150*time.Millisecond, func() {
		rt := r.route(1, true, ln.Addr().String())
		rt.Protocol = "tcp"
		r.tab.set(rt)
	})
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if got != "echo hi\n" {
		t.Fatalf("got %q", got)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig("127.0.0.1:0")
	ok.Table, ok.Local = newTable(), (&upstreams{}).local
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(*Config){
		"gate":   func(c *Config) { c.GateAddr = "" },
		"table":  func(c *Config) { c.Table = nil },
		"held":   func(c *Config) { c.MaxHeld = 0 },
		"budget": func(c *Config) { c.DefaultBudget = 0 },
		"logger": func(c *Config) { c.Logger = nil },
	} {
		c := ok
		edit(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
