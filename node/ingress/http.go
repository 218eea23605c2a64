package ingress

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lifeboat/lifeboat/internal/bodytimeout"
)

// httpFront is one HTTP service's listener on this peer.
type httpFront struct {
	in   *Ingress
	r    Route
	ln   *switchListener
	held atomic.Int64 // requests waiting for a holder

	mu   sync.Mutex     // guards srv and all
	srv  *http.Server   // the server new connections go to
	all  []*http.Server // every server started, drained ones too
	done sync.WaitGroup
}

func newHTTPFront(in *Ingress, r Route, ln net.Listener) *httpFront {
	f := &httpFront{in: in, r: r, ln: newSwitchListener(ln)}
	f.serve(true)
	return f
}

// serve starts a server on a fresh inner listener; keepAlive false makes
// every answer close its connection.
func (f *httpFront) serve(keepAlive bool) {
	srv := &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, Protocols: protocols()}
	srv.SetKeepAlivesEnabled(keepAlive)
	inner := f.ln.next()
	f.mu.Lock()
	f.srv = srv
	f.all = append(f.all, srv)
	f.mu.Unlock()
	f.done.Add(1)
	go func() {
		defer f.done.Done()
		_ = srv.Serve(inner)
	}()
}

func (f *httpFront) route() Route { return f.r }

// drain: Shutdown sends GOAWAY on HTTP/2 connections and closes idle
// HTTP/1.1 ones (and lets running requests finish); new connections go
// to a server that closes each after its answer.
func (f *httpFront) drain() {
	f.mu.Lock()
	old := f.srv
	f.mu.Unlock()
	f.serve(false)
	f.done.Add(1)
	go func() {
		defer f.done.Done()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = old.Shutdown(ctx)
	}()
}

func (f *httpFront) close() {
	f.ln.Close()
	f.mu.Lock()
	srv, all := f.srv, f.all
	f.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = srv.Shutdown(ctx)
	cancel()
	for _, s := range all { // a drained server's Shutdown may still wait on a request
		_ = s.Close()
	}
	f.done.Wait()
}

// idempotent methods may be sent again when the connection broke after
// they were sent (RFC 9110 §9.2.2), as may any request with an
// Idempotency-Key.
func idempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return r.Header.Get("Idempotency-Key") != ""
}

// ServeHTTP holds a request until a holder is ready and forwards it to
// that holder's gate, again while it safely may, so a move shows clients
// a pause rather than an error.
func (f *httpFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	budget := f.budget()
	ctx, cancel := context.WithTimeout(r.Context(), budget)
	defer cancel()
	lift := bodytimeout.Start(w, r, f.in.cfg.BodyTimeout)
	body, replayable, err := f.readBody(r)
	if err == nil && !replayable {
		lift() // it streams on to the service, under the service's timeouts
	}
	if err != nil { // the deadline stays: what is left of the body is not waited for
		status := http.StatusBadRequest
		if errors.Is(err, bodytimeout.ErrTimeout) {
			status = http.StatusRequestTimeout
		}
		http.Error(w, "lifeboat ingress: reading the request: "+err.Error(), status)
		return
	}
	var min uint64
	retried := false
	for {
		rt, err := f.hold(ctx, min)
		if err != nil {
			f.busy(w, budget, err)
			return
		}
		resp, err := f.forward(r, rt, body, replayable)
		out := outcome(resp, err)
		if out == outOK {
			copyResponse(w, resp)
			return
		}
		next, again := f.retry(ctx, r, out, resp, rt.Epoch, replayable, &retried)
		if again {
			min = next
			continue
		}
		f.fail(ctx, w, budget, err)
		return
	}
}

// budget is how long a request may wait for a holder: the current
// route's, since its SLO may have changed since this front was opened.
func (f *httpFront) budget() time.Duration {
	if cur, ok := f.in.lookup(f.r.Service); ok {
		return f.in.budget(cur)
	}
	return f.in.budget(f.r)
}

// retry decides whether a request that got no answer to pass on goes
// once more, and from which epoch on; only here do the retry rules
// (safe to resend? retried already?) live, so ServeHTTP stays a loop.
// It closes resp. *retried records the one retry a broken request gets.
func (f *httpFront) retry(ctx context.Context, r *http.Request, out int, resp *http.Response, epoch uint64, replayable bool, retried *bool) (uint64, bool) {
	if resp != nil {
		resp.Body.Close()
	}
	switch out {
	case outMoving:
		// The gate never passed it on: hold it for the next holder.
		return epoch + 1, true
	case outRefused:
		// It never reached the service (restarting, or its holder is
		// gone): again, until the budget runs out.
		if replayable && pause(ctx) {
			return epoch, true
		}
	case outBroken:
		// The connection broke after the request was sent (the holder
		// stopped or died): an idempotent one goes once more, to
		// whoever holds the service next.
		if replayable && !*retried && idempotent(r) && pause(ctx) {
			*retried = true
			f.in.cfg.Logger.Info("ingress: retrying on the next holder", "service", f.r.Service, "epoch", epoch)
			return epoch, true
		}
	}
	return 0, false
}

// fail answers a request that goes no more: 503 (retry later) when its
// budget ran out, since the service is then moving rather than broken;
// 502 when the service itself failed it.
func (f *httpFront) fail(ctx context.Context, w http.ResponseWriter, budget time.Duration, err error) {
	if ctx.Err() != nil {
		f.busy(w, budget, errHeldTooLong)
		return
	}
	msg := "the service failed the request"
	if err != nil {
		msg = err.Error()
	}
	http.Error(w, "lifeboat ingress: "+msg, http.StatusBadGateway)
}

// Outcomes of a request forwarded to a gate.
const (
	outOK      = iota // an answer of the service (or the gate's own error) to pass on
	outMoving         // the gate did not admit it
	outRefused        // it never reached the service
	outBroken         // it was sent and the connection broke
)

func outcome(resp *http.Response, err error) int {
	switch {
	case err != nil && notSent(err):
		return outRefused
	case err != nil:
		return outBroken
	case resp.Header.Get(HeaderMoving) != "":
		return outMoving
	case resp.StatusCode == http.StatusBadGateway && resp.Header.Get(HeaderUpstream) == upstreamRefused:
		return outRefused
	case resp.StatusCode == http.StatusBadGateway && resp.Header.Get(HeaderUpstream) == upstreamBroken:
		return outBroken
	}
	return outOK
}

// pause waits a little before a retry; false when ctx ended.
func pause(ctx context.Context) bool {
	select {
	case <-time.After(20 * time.Millisecond):
		return true
	case <-ctx.Done():
		return false
	}
}

// hold returns the route once a holder is ready, waiting in the bounded
// queue if none is.
func (f *httpFront) hold(ctx context.Context, min uint64) (Route, error) {
	if rt, ok := f.in.lookup(f.r.Service); ok && rt.Ready && rt.Epoch >= min {
		return rt, nil
	}
	if n := f.held.Add(1); n > int64(f.in.cfg.MaxHeld) {
		f.held.Add(-1)
		return Route{}, fmt.Errorf("ingress: %d requests already held", n-1)
	}
	defer f.held.Add(-1)
	return f.in.waitReady(ctx, f.r.Service, min)
}

// busy answers 503 with Retry-After: backpressure, never a hang.
func (f *httpFront) busy(w http.ResponseWriter, budget time.Duration, why error) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(max(budget, time.Second).Seconds()))))
	http.Error(w, "lifeboat ingress: "+f.r.Service+" is moving: "+why.Error(), http.StatusServiceUnavailable)
}

// readBody keeps a body of at most MaxRetryBody for a retry; a larger
// (or unknown-length, past the limit) one streams once.
func (f *httpFront) readBody(r *http.Request) ([]byte, bool, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, true, nil
	}
	if r.ContentLength > f.in.cfg.MaxRetryBody {
		return nil, false, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, f.in.cfg.MaxRetryBody+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(b)) > f.in.cfg.MaxRetryBody {
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(b), r.Body), r.Body}
		return nil, false, nil
	}
	return b, true, nil
}

// forward sends the request to the holder's gate.
func (f *httpFront) forward(r *http.Request, rt Route, body []byte, replayable bool) (*http.Response, error) {
	out := r.Clone(r.Context())
	out.URL.Scheme, out.URL.Host = "http", rt.Gate
	out.RequestURI = ""
	removeHopHeaders(out.Header)
	out.Header.Set(HeaderService, rt.Service)
	out.Header.Set(HeaderEpoch, strconv.FormatUint(rt.Epoch, 10))
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		out.Header.Add("X-Forwarded-For", host)
	}
	if replayable {
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.ContentLength = int64(len(body))
		if len(body) == 0 {
			out.Body = http.NoBody
		}
	}
	return f.in.tr.RoundTrip(out)
}

// notSent: the connection to the gate was never made, so the request
// cannot have reached the service.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// hopHeaders are per connection (RFC 9110 §7.6.1).
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Proxy-Connection"}

func removeHopHeaders(h http.Header) {
	for _, k := range hopHeaders {
		h.Del(k)
	}
}

// copyResponse writes the gate's answer to the client.
func copyResponse(w http.ResponseWriter, resp *http.Response) {
	defer resp.Body.Close()
	removeHopHeaders(resp.Header)
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}
