// Package ingress is every peer's front door to the workloads' services.
// For each workload with a service, every peer listens on the service's
// port and passes requests to the current holder, as its own replica of
// the state says. Requests reach the service through the holder's gate
// (this peer's ingress port on the holder): the gate admits a request
// only under the epoch that holds the workload there, counts it while it
// runs, and before a move's final checkpoint closes (Close) and waits
// until what it admitted has finished. Meanwhile the fronts hold new
// requests in a bounded queue and send them to the new holder once it
// runs and answers (its gate's health check), so that a cutover costs
// clients a pause, not an error. Past the queue's size or the service's
// budget they answer 503 with Retry-After.
package ingress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Headers between the ingress's parts and to the service.
const (
	// HeaderEpoch carries the holder's epoch: to its gate, and from the
	// gate to the service.
	HeaderEpoch = "X-Lifeboat-Epoch"
	// HeaderService names the workload to the holder's gate.
	HeaderService = "X-Lifeboat-Service"
	// HeaderMoving marks a gate's refusal: the request never reached the
	// service, and the front holds it for the next holder.
	HeaderMoving = "X-Lifeboat-Moving"
)

// Route is where a service's requests go, from a peer's replica.
type Route struct {
	Service  string        // the workload's id
	Listen   int           // the port every peer's ingress listens on for it
	Protocol string        // "http" (default) or "tcp"
	Budget   time.Duration // how long a request may wait for a holder (the SLO's budget); 0: Config.DefaultBudget
	Holder   string        // the holder's node name; "" none
	Gate     string        // host:port of the holder's gate (http)
	Upstream string        // host:port of the service on the holder (tcp)
	Epoch    uint64        // the holder's epoch
	// Ready: the workload runs under Epoch and no move is under way;
	// requests may go to the holder.
	Ready bool
}

// Table is a peer's view of the routes.
type Table interface {
	// Routes lists every service's route.
	Routes() []Route
	// Changed is closed at the next change of the routes.
	Changed() <-chan struct{}
}

// Config configures an Ingress.
type Config struct {
	// GateAddr is where this peer's gate listens (bind:ingress-port).
	GateAddr string
	// BindHost is the address the services' listeners bind.
	BindHost string
	// Table is the peer's routes.
	Table Table
	// Local answers the gate: the address of the service id this peer
	// holds under epoch, or an error if it does not (any more).
	Local func(id string, epoch uint64) (string, error)
	// MaxHeld bounds the requests held per service; past it, 503.
	MaxHeld int
	// DefaultBudget is how long a request may be held when its service
	// names no SLO.
	DefaultBudget time.Duration
	// MaxRetryBody is the largest request body kept for a retry; larger
	// ones are streamed and never retried.
	MaxRetryBody int64
	// BodyTimeout bounds how long a front waits for the part of a
	// request's body it reads itself (up to MaxRetryBody, before the
	// request goes on): past it the client is answered 408 and its
	// connection closed, so one that trickles its body cannot hold a
	// front. A larger body streams on to the service under the service's
	// own timeouts, as it would without the ingress. Zero turns it off.
	BodyTimeout time.Duration
	// DialTimeout bounds a connection to a gate or a service.
	DialTimeout time.Duration
	// SlowStart is how long after a service first answers under an epoch
	// (a start, or the restore after a move) the gate holds back the
	// requests passed to it at once: one at first, one more with each
	// answer, at most SlowStartConns. The requests held across a move
	// all arrive at once, and a freshly restored process, whose memory
	// may still be arriving (lazy pages), answers one sooner than a
	// crowd. Zero turns it off.
	SlowStart      time.Duration
	SlowStartConns int
	Logger         *slog.Logger
}

// DefaultConfig returns the defaults for a gate at gateAddr.
func DefaultConfig(gateAddr string) Config {
	return Config{GateAddr: gateAddr, BindHost: "0.0.0.0", MaxHeld: 1024, DefaultBudget: 5 * time.Second,
		MaxRetryBody: 1 << 20, BodyTimeout: 30 * time.Second, DialTimeout: time.Second, SlowStart: time.Second, SlowStartConns: 8, Logger: slog.Default()}
}

// Validate reports the first field that cannot work.
func (c Config) Validate() error {
	switch {
	case c.GateAddr == "":
		return errors.New("ingress: GateAddr is empty")
	case c.Table == nil || c.Local == nil:
		return errors.New("ingress: Table and Local are required")
	case c.MaxHeld <= 0:
		return fmt.Errorf("ingress: MaxHeld %d must be positive", c.MaxHeld)
	case c.DefaultBudget <= 0 || c.DialTimeout <= 0:
		return errors.New("ingress: DefaultBudget and DialTimeout must be positive")
	case c.MaxRetryBody < 0 || c.BodyTimeout < 0:
		return errors.New("ingress: MaxRetryBody and BodyTimeout must not be negative")
	case c.SlowStart < 0 || (c.SlowStart > 0 && c.SlowStartConns <= 0):
		return fmt.Errorf("ingress: SlowStart %v must not be negative, and SlowStartConns %d must be positive with it", c.SlowStart, c.SlowStartConns)
	case c.Logger == nil:
		return errors.New("ingress: Logger is nil")
	}
	return nil
}

// Ingress is a peer's ingress: its gate and a front per service.
type Ingress struct {
	cfg  Config
	gate *gate
	tr   *http.Transport

	mu       sync.Mutex // guards fronts and draining
	fronts   map[int]front
	draining bool
	wg       sync.WaitGroup
}

// front is one service's listener.
type front interface {
	route() Route
	drain()
	close()
}

// New builds an ingress; Run serves it.
func New(cfg Config) (*Ingress, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: cfg.DialTimeout}
	tr := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}
	return &Ingress{cfg: cfg, gate: newGate(cfg), tr: tr, fronts: map[int]front{}}, nil
}

// Close stops admitting requests for id under epoch at this peer's gate
// (a move of it is about to take the final checkpoint) and waits, up to
// ctx, until what the gate admitted has finished.
func (in *Ingress) Close(ctx context.Context, id string, epoch uint64) error {
	return in.gate.close(ctx, id, epoch)
}

// Open admits id under epoch again (the move failed and it runs on).
func (in *Ingress) Open(id string, epoch uint64) { in.gate.open(id, epoch) }

// Run serves the gate and keeps a front for every service of the table
// until ctx ends; then everything is closed.
func (in *Ingress) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", in.cfg.GateAddr)
	if err != nil {
		return fmt.Errorf("ingress gate: %w", err)
	}
	srv := &http.Server{Handler: in.gate, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, Protocols: protocols()}
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			in.cfg.Logger.Error("ingress gate stopped", "err", err)
		}
	}()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
		in.mu.Lock()
		for port, f := range in.fronts {
			f.close()
			delete(in.fronts, port)
		}
		in.mu.Unlock()
		in.wg.Wait()
		in.tr.CloseIdleConnections()
	}()
	retry := time.NewTicker(5 * time.Second) // ports that were busy
	defer retry.Stop()
	for {
		changed := in.cfg.Table.Changed()
		in.reconcile()
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-retry.C:
		}
	}
}

// reconcile opens a front for every service that has none and closes
// those whose service is gone or changed its port or protocol.
func (in *Ingress) reconcile() {
	want := map[int]Route{}
	for _, r := range in.cfg.Table.Routes() {
		if r.Listen > 0 {
			want[r.Listen] = r
		}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for port, f := range in.fronts {
		if r, ok := want[port]; !ok || r.Service != f.route().Service || r.Protocol != f.route().Protocol {
			f.close()
			delete(in.fronts, port)
		}
	}
	for port, r := range want {
		if _, ok := in.fronts[port]; ok {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(in.cfg.BindHost, strconv.Itoa(port)))
		if err != nil {
			in.cfg.Logger.Error("ingress: cannot listen for a service", "service", r.Service, "port", port, "err", err)
			continue
		}
		var f front
		if r.Protocol == "tcp" {
			f = newTCPFront(in, r, ln)
		} else {
			f = newHTTPFront(in, r, ln)
		}
		if in.draining {
			f.drain()
		}
		in.fronts[port] = f
		in.cfg.Logger.Info("ingress listening", "service", r.Service, "port", port, "protocol", r.Protocol)
	}
}

// Drain turns this peer's fronts away from their clients: HTTP/2
// connections get GOAWAY, idle HTTP/1.1 connections are closed and every
// later answer closes its connection, so that clients (and their load
// balancer, which /readyz turns away) move to other peers. Requests still
// arriving are served. For a host that is about to be taken back.
func (in *Ingress) Drain() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.draining {
		return
	}
	in.draining = true
	for _, f := range in.fronts {
		f.drain()
	}
	in.cfg.Logger.Warn("ingress draining: clients are sent to other peers")
}

// Draining reports whether Drain was called.
func (in *Ingress) Draining() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.draining
}

// lookup is the current route of service.
func (in *Ingress) lookup(service string) (Route, bool) {
	for _, r := range in.cfg.Table.Routes() {
		if r.Service == service {
			return r, true
		}
	}
	return Route{}, false
}

// budget is how long a request of r may be held.
func (in *Ingress) budget(r Route) time.Duration {
	if r.Budget > 0 {
		return r.Budget
	}
	return in.cfg.DefaultBudget
}

// errHeldTooLong: no holder was ready within the budget.
var errHeldTooLong = errors.New("ingress: no holder ready within the budget")

// waitReady holds until service's route is ready with an epoch of at
// least min, or ctx ends.
func (in *Ingress) waitReady(ctx context.Context, service string, min uint64) (Route, error) {
	for {
		changed := in.cfg.Table.Changed()
		r, ok := in.lookup(service)
		if ok && r.Ready && r.Epoch >= min {
			return r, nil
		}
		select {
		case <-changed:
		case <-time.After(50 * time.Millisecond): // a gate may open without a table change
		case <-ctx.Done():
			return r, errHeldTooLong
		}
	}
}

// protocols serves HTTP/1.1 and HTTP/2 without TLS (h2c, prior
// knowledge).
func protocols() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return &p
}
