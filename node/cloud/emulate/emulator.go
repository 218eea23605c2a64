package emulate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// maxPathKeys bounds the request counter's distinct paths; the rest count
// under otherPaths.
const (
	maxPathKeys = 256
	otherPaths  = "(other)"
)

// Emulator is one cloud's metadata service for one instance. Its methods
// are safe for concurrent use.
type Emulator struct {
	cfg     Config
	log     *slog.Logger
	started time.Time     // the instance's launch time (AWS pendingTime)
	done    chan struct{} // closed by Close: wakes GCP long polls

	mu          sync.Mutex           // guards the fields below
	notices     []*notice            // in scheduling order; acknowledged ones stay, marked
	acks        []string             // Azure EventIds acknowledged, in order
	tokens      map[string]time.Time // AWS token -> expiry
	tokensIssue int                  // AWS tokens issued since New
	requests    map[string]int       // requests served, by URL path
	incarnation int                  // Azure DocumentIncarnation
	watches     map[string]*watch    // GCP wait_for_change, by request key
	waiting     int                  // GCP requests blocked in wait_for_change
	closed      bool
	srv         *http.Server  // set by Start
	serveDone   chan struct{} // closed when Start's Serve returns

	timers sync.WaitGroup // one per armed notice timer
	once   sync.Once      // Close
}

// New validates cfg and returns an emulator with no notices. Close it to
// stop its timers, even when only Handler is used.
func New(cfg Config) (*Emulator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Emulator{
		cfg:         cfg,
		log:         cfg.Logger.With("cloud", cfg.Cloud),
		started:     cfg.Now().UTC().Truncate(time.Second),
		done:        make(chan struct{}),
		tokens:      map[string]time.Time{},
		requests:    map[string]int{},
		incarnation: 1,
		watches:     map[string]*watch{},
	}, nil
}

// Config returns the configuration the emulator was made with.
func (e *Emulator) Config() Config { return e.cfg }

// Handler serves the cloud's metadata paths and the /lifeboat/ control
// endpoints.
func (e *Emulator) Handler() http.Handler {
	var cloud http.Handler
	switch e.cfg.Cloud {
	case AWS:
		cloud = http.HandlerFunc(e.serveAWS)
	case GCP:
		cloud = http.HandlerFunc(e.serveGCP)
	default:
		cloud = http.HandlerFunc(e.serveAzure)
	}
	control := e.controlHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, controlPrefix) {
			control.ServeHTTP(w, r)
			return
		}
		e.count(r.URL.Path)
		e.log.Debug("request", "method", r.Method, "path", r.URL.Path, "query", r.URL.RawQuery)
		cloud.ServeHTTP(w, r)
	})
}

// count records one request for path.
func (e *Emulator) count(path string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.requests[path]; !ok && len(e.requests) >= maxPathKeys {
		path = otherPaths
	}
	e.requests[path]++
}

// Start serves Handler on addr ("127.0.0.1:0" picks a port) until Close and
// returns the base URL, with a loopback address in place of an unspecified
// one.
func (e *Emulator) Start(addr string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return "", ErrClosed
	}
	if e.srv != nil {
		return "", errors.New("emulate: already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("emulate: listen %s: %w", addr, err)
	}
	e.srv = &http.Server{Handler: e.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(e.log.Handler(), slog.LevelWarn)}
	e.serveDone = make(chan struct{})
	go func(srv *http.Server, done chan struct{}) {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			e.log.Error("serve", "err", err)
		}
	}(e.srv, e.serveDone)
	return baseURL(ln.Addr().(*net.TCPAddr)), nil
}

// baseURL is http://IP:PORT, with loopback for an unspecified IP.
func baseURL(a *net.TCPAddr) string {
	ip := a.IP
	switch {
	case ip.IsUnspecified() && ip.To4() != nil:
		ip = net.IPv4(127, 0, 0, 1)
	case ip.IsUnspecified():
		ip = net.IPv6loopback
	}
	return "http://" + net.JoinHostPort(ip.String(), fmt.Sprint(a.Port))
}

// Close stops the server (if Start ran), answers blocked long polls, stops
// the notice timers and waits for all of it. It is idempotent.
func (e *Emulator) Close() error {
	var err error
	e.once.Do(func() {
		e.mu.Lock()
		e.closed = true
		close(e.done)
		for _, n := range e.notices {
			e.stopTimerLocked(n)
		}
		srv, serveDone := e.srv, e.serveDone
		e.mu.Unlock()
		if srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err = srv.Shutdown(ctx); err != nil {
				err = errors.Join(err, srv.Close())
			}
			cancel()
			<-serveDone
		}
		e.timers.Wait()
	})
	return err
}

// EnvLine is the environment assignment that points a cloud's SDK (or, for
// Azure, lifeboat's own watcher) at an emulator serving baseURL
// (http://HOST:PORT).
func EnvLine(cloud, baseURL string) string {
	switch cloud {
	case AWS:
		return "AWS_EC2_METADATA_SERVICE_ENDPOINT=" + strings.TrimSuffix(baseURL, "/") + "/"
	case GCP:
		return "GCE_METADATA_HOST=" + strings.TrimPrefix(strings.TrimSuffix(baseURL, "/"), "http://")
	case Azure:
		return "LIFEBOAT_AZURE_METADATA_ENDPOINT=" + strings.TrimSuffix(baseURL, "/")
	}
	return ""
}
