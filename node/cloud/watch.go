package cloud

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/lifeboat/lifeboat/internal/wait"

	"github.com/lifeboat/lifeboat/node/cloud/kind"
)

// Notice kinds: the values are package kind's, shared with the emulators.
const (
	KindPreempt     = kind.Preempt     // the cloud is taking the capacity back (spot/preemptible)
	KindRebalance   = kind.Rebalance   // AWS recommends moving off early; the host is not yet doomed
	KindMaintenance = kind.Maintenance // the host will be rebooted, redeployed, frozen or migrated
	KindTerminate   = kind.Terminate   // the instance is being terminated (autoscaling, Azure Terminate)
)

// The warning each cloud usually gives, used as the deadline when the
// metadata does not name a time.
const (
	awsWarning   = 2 * time.Minute
	gcpWarning   = 30 * time.Second
	azureWarning = 30 * time.Second
)

// Errors callers branch on.
var (
	// ErrUnknownCloud: WatchConfig.Cloud is not aws, gcp or azure.
	ErrUnknownCloud = errors.New("unknown cloud")
	// ErrNotDetected: no endpoint was configured (neither WatchConfig.Endpoint
	// nor the SDK's variable) and DMI does not say this host runs in that
	// cloud, so the watcher refuses to send anything to the metadata address.
	ErrNotDetected = errors.New("cloud not detected and no metadata endpoint configured")
	// ErrUnexpectedHost: a request was about to leave for a host other than
	// the one endpoint this watcher was built for; it was not sent.
	ErrUnexpectedHost = errors.New("metadata request to an unexpected host")
	// ErrBadDocument: a metadata document did not have the expected shape.
	ErrBadDocument = errors.New("malformed metadata document")
	// ErrNoEventID: Ack was given a notice without the cloud's event id.
	ErrNoEventID = errors.New("notice has no event id to acknowledge")
)

// Notice is one interruption signal as a watcher saw it.
type Notice struct {
	Cloud string // aws|gcp|azure
	Kind  string // one of the Kind constants
	// Deadline is when the host goes. It is never zero: when the cloud does
	// not say, it is SeenAt plus the cloud's usual warning (AWS 2 min,
	// GCP and Azure 30 s).
	Deadline time.Time
	// Reason is what the metadata said, e.g.
	// `spot/instance-action: {"action":"terminate","time":"..."}`.
	Reason string
	// ID is the cloud's event id (Azure EventId, AWS maintenance EventId),
	// for Ack.
	ID     string
	SeenAt time.Time
}

// Doomed reports whether the host is going away: everything but a
// rebalance recommendation, which only asks for pre-copy.
func (n Notice) Doomed() bool { return n.Kind != KindRebalance }

// Identity is who this host is, as its metadata service says.
type Identity struct {
	Cloud        string
	Region       string
	Zone         string
	InstanceID   string
	InstanceType string
	Lifecycle    string // spot|on-demand
}

// Lifecycles.
const (
	LifecycleSpot     = "spot"
	LifecycleOnDemand = "on-demand"
)

// Watcher reads one cloud's metadata service. It is used by the node's
// evacuation loop; its methods may be called from any goroutine, and
// concurrently. They block on the network and honour ctx.
type Watcher interface {
	// Identity reads who this host is.
	Identity(ctx context.Context) (Identity, error)
	// Watch sends every new notice to out until ctx ends, then returns
	// ctx.Err(). The same notice is sent once, a changed one again; each call
	// of Watch starts afresh, so a second call sends the current notices
	// again. Transient errors are retried with backoff and logged, never
	// fatal. Watch blocks while out is full; every goroutine it starts has
	// ended when it returns.
	Watch(ctx context.Context, out chan<- Notice) error
	// Ack tells the cloud the host is ready to go (Azure: POST StartRequests
	// for n.ID); a no-op for AWS and GCP.
	Ack(ctx context.Context, n Notice) error
}

// WatchConfig configures NewWatcher.
type WatchConfig struct {
	// Cloud is aws, gcp or azure.
	Cloud string
	// Endpoint is the metadata service's base URL ("http://127.0.0.1:1338";
	// for GCP "host:port" also works). Empty means the SDK's own resolution
	// from the standard variable (AWS_EC2_METADATA_SERVICE_ENDPOINT,
	// GCE_METADATA_HOST, LIFEBOAT_AZURE_METADATA_ENDPOINT), and, when that is
	// unset too, the cloud's link-local address, but only on a host that DMI
	// says is in that cloud.
	Endpoint string
	// PollInterval is how often AWS and Azure are polled (GCP long-polls).
	PollInterval time.Duration
	// MaxBackoff caps the wait between retries after errors.
	MaxBackoff time.Duration
	// RequestTimeout bounds one metadata request (not GCP's long-polls).
	RequestTimeout time.Duration
	// DMIDir is where Detect reads the firmware strings.
	DMIDir string
	Logger *slog.Logger
	Now    func() time.Time
}

// DefaultWatchConfig returns the defaults for cloud.
func DefaultWatchConfig(cloud string) WatchConfig {
	return WatchConfig{
		Cloud:          cloud,
		PollInterval:   200 * time.Millisecond,
		MaxBackoff:     2 * time.Second,
		RequestTimeout: 2 * time.Second,
		DMIDir:         DMIDir,
		Logger:         slog.New(slog.DiscardHandler),
		Now:            time.Now,
	}
}

// Validate reports the first bad setting.
func (c WatchConfig) Validate() error {
	switch {
	case c.Cloud != AWS && c.Cloud != GCP && c.Cloud != Azure:
		return fmt.Errorf("WatchConfig.Cloud %q: %w (want aws, gcp or azure)", c.Cloud, ErrUnknownCloud)
	case c.PollInterval <= 0:
		return fmt.Errorf("WatchConfig.PollInterval %v must be positive", c.PollInterval)
	case c.MaxBackoff < c.PollInterval:
		return fmt.Errorf("WatchConfig.MaxBackoff %v must be at least PollInterval %v", c.MaxBackoff, c.PollInterval)
	case c.RequestTimeout <= 0:
		return fmt.Errorf("WatchConfig.RequestTimeout %v must be positive", c.RequestTimeout)
	case c.DMIDir == "":
		return errors.New("WatchConfig.DMIDir is empty (the default is " + DMIDir + ")")
	case c.Logger == nil:
		return errors.New("WatchConfig.Logger is nil")
	case c.Now == nil:
		return errors.New("WatchConfig.Now is nil")
	}
	if c.Endpoint != "" {
		if _, err := parseEndpoint(c.Endpoint); err != nil {
			return fmt.Errorf("WatchConfig.Endpoint: %w", err)
		}
	}
	return nil
}

// NewWatcher returns the watcher for cfg.Cloud. Without an endpoint (in cfg
// or in the cloud's variable) it returns ErrNotDetected unless DMI says the
// host runs in that cloud: a laptop never sends a packet to 169.254.169.254.
func NewWatcher(cfg WatchConfig) (Watcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Logger = cfg.Logger.With("cloud", cfg.Cloud)
	switch cfg.Cloud {
	case AWS:
		return newAWS(cfg)
	case GCP:
		return newGCP(cfg)
	default:
		return newAzure(cfg)
	}
}

// endpointVar names the variable each cloud's client reads its endpoint from.
var endpointVar = map[string]string{
	AWS:   "AWS_EC2_METADATA_SERVICE_ENDPOINT",
	GCP:   "GCE_METADATA_HOST",
	Azure: "LIFEBOAT_AZURE_METADATA_ENDPOINT",
}

// metadataAddress is where every cloud's metadata service lives.
const metadataAddress = "http://169.254.169.254"

// resolveEndpoint decides where cfg's watcher may send requests: the
// explicit endpoint, else the variable, else the link-local address if DMI
// says this is that cloud.
func resolveEndpoint(cfg WatchConfig) (*url.URL, error) {
	raw := cfg.Endpoint
	if raw == "" {
		raw = os.Getenv(endpointVar[cfg.Cloud])
	}
	if raw == "" {
		if got := Detect(cfg.DMIDir, os.Getenv); got != cfg.Cloud {
			return nil, fmt.Errorf("%s watcher (DMI says %q; set %s or WatchConfig.Endpoint to use an emulator): %w",
				cfg.Cloud, got, endpointVar[cfg.Cloud], ErrNotDetected)
		}
		raw = metadataAddress
	}
	u, err := parseEndpoint(raw)
	if err != nil {
		return nil, fmt.Errorf("%s metadata endpoint: %w", cfg.Cloud, err)
	}
	return u, nil
}

// parseEndpoint accepts "http://host:port" or a bare "host:port".
func parseEndpoint(s string) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" ||
		u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("%q: want http://host[:port] with no path", s)
	}
	u.Path = ""
	return u, nil
}

// newTransport returns the transport every watcher uses: never through a
// proxy, short dial timeout (the service is one hop away).
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// newHTTPClient returns a client whose every request must go to host.
func newHTTPClient(host string) (*http.Client, *http.Transport) {
	tr := newTransport()
	return &http.Client{Transport: &guard{host: host, base: tr}}, tr
}

// guard keeps requests on the one metadata host; with rewrite, it points
// them there first (GCP's client can only be redirected through its
// variable).
type guard struct {
	host    string
	rewrite bool
	base    http.RoundTripper
}

func (g *guard) RoundTrip(r *http.Request) (*http.Response, error) {
	if g.rewrite && r.URL.Host != g.host {
		r = r.Clone(r.Context())
		r.URL.Host, r.Host = g.host, g.host
	}
	if r.URL.Host != g.host {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, fmt.Errorf("%w: %s (this watcher may only reach %s)", ErrUnexpectedHost, r.URL.Host, g.host)
	}
	return g.base.RoundTrip(r)
}

// backoff doubles the wait after each failure, from min up to max.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	b.cur = max(b.min, min(2*b.cur, b.max))
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }

// sleep waits d or until ctx ends, and then returns ctx's error.
func sleep(ctx context.Context, d time.Duration) error {
	if !wait.Sleep(ctx, d) {
		return ctx.Err()
	}
	return nil
}

// send delivers n unless ctx ends first.
func send(ctx context.Context, out chan<- Notice, n Notice) error {
	select {
	case out <- n:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sighting is one notice a poll found, with the key that says whether it
// is the same as one already sent.
type sighting struct {
	key    string
	notice Notice
}

// tracker remembers what the last successful poll found, so that a notice
// is sent once while it stays, and again if it changes or comes back.
type tracker struct{ last map[string]bool }

// fresh returns the sightings the previous poll did not have, and makes
// this poll the previous one.
func (t *tracker) fresh(now []sighting) []Notice {
	next := make(map[string]bool, len(now))
	var out []Notice
	for _, s := range now {
		next[s.key] = true
		if !t.last[s.key] {
			out = append(out, s.notice)
		}
	}
	t.last = next
	return out
}

// pollLoop calls poll every interval until ctx ends, backing off after
// errors. Failures are logged when they start and when they stop, not on
// every retry.
func pollLoop(ctx context.Context, cfg WatchConfig, poll func(context.Context) error) error {
	b := backoff{min: cfg.PollInterval, max: cfg.MaxBackoff}
	failures := 0
	for {
		err := poll(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := cfg.PollInterval
		switch {
		case err != nil:
			failures++
			wait = b.next()
			logFailure(cfg.Logger, failures, wait, err)
		case failures > 0:
			cfg.Logger.Info("metadata service answering again", "failures", failures)
			failures = 0
			b.reset()
		}
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// logFailure logs the first failure of a run as a warning, later ones at
// debug level, so a missing service does not flood the log.
func logFailure(log *slog.Logger, failures int, retry time.Duration, err error) {
	level := slog.LevelDebug
	if failures == 1 {
		level = slog.LevelWarn
	}
	log.Log(context.Background(), level, "metadata read failed; retrying", "err", err, "failures", failures, "retry_in", retry)
}

// deadlineOr returns t, or seen plus the usual warning when t is zero.
func deadlineOr(t, seen time.Time, warning time.Duration) time.Time {
	if t.IsZero() {
		return seen.Add(warning)
	}
	return t
}
