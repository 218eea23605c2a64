package ingress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// gate admits requests to the services this peer holds: only under the
// holder's current epoch, not once a move closed it, and only after the
// service answers (a TCP health check per epoch). It counts what it
// admitted so that Close can wait for it.
type gate struct {
	cfg Config

	mu       sync.Mutex        // guards the maps
	closed   map[string]uint64 // service -> highest epoch closed
	inflight map[string]int
	healthy  map[string]uint64 // service -> epoch whose service answered
	checking map[string]*check // service -> its health check under way
	warming  map[string]*warmup
	idle     *sync.Cond // signalled when an inflight count drops

	proxy *httputil.ReverseProxy
}

func newGate(cfg Config) *gate {
	g := &gate{cfg: cfg, closed: map[string]uint64{}, inflight: map[string]int{}, healthy: map[string]uint64{},
		checking: map[string]*check{},
		warming:  map[string]*warmup{}}
	g.idle = sync.NewCond(&g.mu)
	d := &net.Dialer{Timeout: cfg.DialTimeout}
	g.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: "http", Host: pr.In.Header.Get(hdrUpstream)})
			pr.Out.Header.Del(hdrUpstream)
			pr.Out.Header.Del(HeaderService)
			pr.Out.Host = pr.In.Host
		},
		Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute},
		ErrorLog:  nil,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			how := upstreamBroken
			var op *net.OpError
			if errors.As(err, &op) && op.Op == "dial" {
				how = upstreamRefused // never reached the service
			}
			cfg.Logger.Warn("ingress gate: the service failed a request", "upstream", r.URL.Host, "how", how, "err", err)
			w.Header().Set(HeaderUpstream, how)
			http.Error(w, "lifeboat gate: the service did not answer: "+err.Error(), http.StatusBadGateway)
		},
	}
	return g
}

// hdrUpstream passes the admitted address from admission to the proxy's
// Rewrite; it is removed before the request leaves.
const hdrUpstream = "X-Lifeboat-Internal-Upstream"

// HeaderUpstream on a gate's 502 says how the service failed: refused
// (the request never reached it) or broken (the connection broke after
// it was sent).
const HeaderUpstream = "X-Lifeboat-Upstream"

const (
	upstreamRefused = "refused"
	upstreamBroken  = "broken"
)

// errMoving: the gate does not (or no longer) admit this request.
var errMoving = errors.New("not admitted here")

// ErrStarting, from Config.Local, says the service is held here under the
// epoch but its process is not up yet (a restore under way): the gate
// holds the request until it is, within the request's budget.
var ErrStarting = errors.New("the service is starting here")

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get(HeaderService)
	epoch, err := strconv.ParseUint(r.Header.Get(HeaderEpoch), 10, 64)
	if id == "" || err != nil {
		http.Error(w, "lifeboat gate: "+HeaderService+" and "+HeaderEpoch+" are required", http.StatusBadRequest)
		return
	}
	upstream, release, err := g.admit(r.Context(), id, epoch)
	if err != nil {
		w.Header().Set(HeaderMoving, "1")
		http.Error(w, fmt.Sprintf("lifeboat gate: %s under epoch %d: %v", id, epoch, err), http.StatusServiceUnavailable)
		return
	}
	defer release()
	if wu := g.warmup(id, epoch); wu != nil {
		passed, err := wu.acquire(r.Context())
		if err != nil {
			return
		}
		if passed {
			defer wu.release()
		}
	}
	r.Header.Set(hdrUpstream, upstream)
	g.proxy.ServeHTTP(w, r)
}

// warmup is a service's slow start under one epoch (Config.SlowStart):
// one request at a time at first, one more at once with each answer, up
// to most. A freshly restored process faults in its memory (lazy pages:
// each page from the old holder); a request alone needs fewer pages
// before it answers than a crowd does.
type warmup struct {
	epoch uint64
	until time.Time
	most  int

	mu       sync.Mutex // guards the counts and changed
	inflight int
	answered int
	changed  chan struct{} // closed and replaced when a request ends
}

func newWarmup(epoch uint64, until time.Time, most int) *warmup {
	return &warmup{epoch: epoch, until: until, most: most, changed: make(chan struct{})}
}

// acquire waits for a place: passed is false when the slow start ended
// meanwhile (no release then); err when ctx ended first.
func (wu *warmup) acquire(ctx context.Context) (passed bool, err error) {
	for {
		wu.mu.Lock()
		if !time.Now().Before(wu.until) {
			wu.mu.Unlock()
			return false, nil
		}
		if wu.inflight < min(wu.most, 1+wu.answered) {
			wu.inflight++
			wu.mu.Unlock()
			return true, nil
		}
		changed := wu.changed
		wu.mu.Unlock()
		select {
		case <-changed:
		case <-time.After(time.Until(wu.until)): // warm by now
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// release ends a request acquire passed.
func (wu *warmup) release() {
	wu.mu.Lock()
	defer wu.mu.Unlock()
	wu.inflight--
	wu.answered++
	close(wu.changed)
	wu.changed = make(chan struct{})
}

// warmup is the slow start of id under epoch while it lasts, or nil.
func (g *gate) warmup(id string, epoch uint64) *warmup {
	g.mu.Lock()
	defer g.mu.Unlock()
	wu := g.warming[id]
	if wu == nil || wu.epoch != epoch || !time.Now().Before(wu.until) {
		return nil
	}
	return wu
}

// admit lets a request of id under epoch through, once the service
// answers, and returns the service's address and the release to call
// when the request is over.
func (g *gate) admit(ctx context.Context, id string, epoch uint64) (string, func(), error) {
	g.mu.Lock()
	if g.closed[id] >= epoch {
		g.mu.Unlock()
		return "", nil, fmt.Errorf("%w: closed for a move", errMoving)
	}
	g.mu.Unlock()
	upstream, err := g.cfg.Local(id, epoch)
	for errors.Is(err, ErrStarting) {
		// Granted here and (re)starting: the request waits here rather
		// than at the front, so that it goes in the moment the process is
		// back rather than when the cluster has heard that it is.
		select {
		case <-ctx.Done():
			return "", nil, fmt.Errorf("%w: %v", errMoving, err)
		case <-time.After(2 * time.Millisecond):
		}
		upstream, err = g.cfg.Local(id, epoch)
	}
	if err != nil {
		return "", nil, fmt.Errorf("%w: %v", errMoving, err)
	}
	if err := g.healthCheck(ctx, id, epoch, upstream); err != nil {
		return "", nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed[id] >= epoch { // closed while the health check ran
		return "", nil, fmt.Errorf("%w: closed for a move", errMoving)
	}
	g.inflight[id]++
	var once sync.Once
	return upstream, func() {
		once.Do(func() {
			g.mu.Lock()
			g.inflight[id]--
			g.mu.Unlock()
			g.idle.Broadcast()
		})
	}, nil
}

// check is one health check of a service under an epoch, which the
// requests that arrive meanwhile wait for rather than dial themselves: a
// process restored a moment ago would otherwise accept a crowd of
// connections (each a goroutine, each faulting in memory) before its
// first request.
type check struct {
	epoch uint64
	done  chan struct{} // closed when the service answered, or the check gave up
}

// healthCheck waits, the first time for an epoch, until the service
// accepts a connection (a restored process may not listen yet). One
// request dials; the others wait for it.
func (g *gate) healthCheck(ctx context.Context, id string, epoch uint64, upstream string) error {
	for {
		g.mu.Lock()
		if g.healthy[id] == epoch {
			g.mu.Unlock()
			return nil
		}
		c := g.checking[id]
		if c == nil || c.epoch != epoch {
			c = &check{epoch: epoch, done: make(chan struct{})}
			g.checking[id] = c
			g.mu.Unlock()
			err := g.dialUntilUp(ctx, id, epoch, upstream)
			g.mu.Lock()
			if g.checking[id] == c {
				delete(g.checking, id)
			}
			g.mu.Unlock()
			close(c.done)
			return err
		}
		g.mu.Unlock()
		select {
		case <-c.done: // up, or that request's budget ran out: look again
		case <-ctx.Done():
			return fmt.Errorf("%w: %s does not answer yet: %v", errMoving, upstream, ctx.Err())
		}
	}
}

// dialUntilUp dials the service until it accepts a connection, then
// records it healthy under epoch (and starts its slow start).
func (g *gate) dialUntilUp(ctx context.Context, id string, epoch uint64, upstream string) error {
	for {
		c, err := (&net.Dialer{Timeout: g.cfg.DialTimeout}).DialContext(ctx, "tcp", upstream)
		if err == nil {
			c.Close()
			g.mu.Lock()
			g.healthy[id] = epoch
			if wu := g.warming[id]; g.cfg.SlowStart > 0 && (wu == nil || wu.epoch != epoch) {
				g.warming[id] = newWarmup(epoch, time.Now().Add(g.cfg.SlowStart), g.cfg.SlowStartConns)
			}
			g.mu.Unlock()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s does not answer yet: %v", errMoving, upstream, err)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// close stops admitting id under epoch (and older) and waits until what
// was admitted has finished, or ctx ends.
func (g *gate) close(ctx context.Context, id string, epoch uint64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed[id] = max(g.closed[id], epoch)
	stop := context.AfterFunc(ctx, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.idle.Broadcast()
	})
	defer stop()
	for g.inflight[id] > 0 {
		if ctx.Err() != nil {
			return fmt.Errorf("ingress: %d requests of %s still running: %w", g.inflight[id], id, ctx.Err())
		}
		g.idle.Wait()
	}
	return nil
}

// open admits id under epoch again after a close for a move that failed.
func (g *gate) open(id string, epoch uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed[id] == epoch {
		delete(g.closed, id)
	}
}
