package cloud

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/compute/metadata"
)

// GCP metadata paths (under /computeMetadata/v1/).
const (
	gcpPreempted   = "instance/preempted"
	gcpMaintenance = "instance/maintenance-event"
)

// gcpWatcher subscribes through the SDK's client, whose requests go through
// a guard that points them at the configured endpoint (the client itself
// only reads GCE_METADATA_HOST) and that retries long-poll failures itself,
// honouring ctx.
type gcpWatcher struct {
	cfg    WatchConfig
	client *metadata.Client
	tr     *http.Transport
}

var _ Watcher = (*gcpWatcher)(nil)

// newGCP builds the client. Without cfg.Endpoint the SDK resolves
// GCE_METADATA_HOST on every request; the guard still refuses any host but
// the one resolved here.
func newGCP(cfg WatchConfig) (*gcpWatcher, error) {
	u, err := resolveEndpoint(cfg)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("gcp metadata endpoint %s: the client speaks only http", u)
	}
	tr := newTransport()
	g := &guard{host: u.Host, rewrite: cfg.Endpoint != "", base: &longPollRetry{
		base: tr, log: cfg.Logger, min: cfg.PollInterval, max: cfg.MaxBackoff,
	}}
	client := metadata.NewWithOptions(&metadata.Options{Client: &http.Client{Transport: g}, Logger: cfg.Logger})
	return &gcpWatcher{cfg: cfg, client: client, tr: tr}, nil
}

// Identity reads zone, machine type, id and provisioning model.
func (w *gcpWatcher) Identity(ctx context.Context) (Identity, error) {
	defer w.tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
	defer cancel()
	get := func(path string) (string, error) {
		v, err := w.client.GetWithContext(ctx, path)
		if err != nil {
			return "", fmt.Errorf("gcp metadata %s: %w", path, err)
		}
		return strings.TrimSpace(v), nil
	}
	zone, err := get("instance/zone")
	if err != nil {
		return Identity{}, err
	}
	machine, err := get("instance/machine-type")
	if err != nil {
		return Identity{}, err
	}
	id, err := get("instance/id")
	if err != nil {
		return Identity{}, err
	}
	lifecycle, err := w.lifecycle(ctx)
	if err != nil {
		return Identity{}, err
	}
	return gcpIdentity(zone, machine, id, lifecycle)
}

// lifecycle reads scheduling/provisioning-model (SPOT), or on older
// instances scheduling/preemptible (TRUE).
func (w *gcpWatcher) lifecycle(ctx context.Context) (string, error) {
	model, err := w.client.GetWithContext(ctx, "instance/scheduling/provisioning-model")
	var undefined metadata.NotDefinedError
	if errors.As(err, &undefined) {
		model, err = w.client.GetWithContext(ctx, "instance/scheduling/preemptible")
		if err == nil && strings.TrimSpace(model) == "TRUE" {
			model = "SPOT"
		}
	}
	if err != nil {
		return "", fmt.Errorf("gcp metadata scheduling: %w", err)
	}
	if strings.TrimSpace(model) == "SPOT" {
		return LifecycleSpot, nil
	}
	return LifecycleOnDemand, nil
}

// gcpIdentity turns "projects/N/zones/us-central1-a" and
// "projects/N/machineTypes/e2-small" into an Identity.
func gcpIdentity(zone, machine, id, lifecycle string) (Identity, error) {
	zone = zone[strings.LastIndex(zone, "/")+1:]
	machine = machine[strings.LastIndex(machine, "/")+1:]
	cut := strings.LastIndex(zone, "-")
	if cut <= 0 || zone == "" || machine == "" || id == "" {
		return Identity{}, fmt.Errorf("gcp identity zone=%q machine-type=%q id=%q: %w", zone, machine, id, ErrBadDocument)
	}
	return Identity{Cloud: GCP, Region: zone[:cut], Zone: zone, InstanceID: id,
		InstanceType: machine, Lifecycle: lifecycle}, nil
}

// gcpSource is one subscribed value and how it reads.
type gcpSource struct {
	path string
	kind string
	// quiet is the value that means no notice.
	quiet string
}

var gcpSources = []gcpSource{
	{gcpPreempted, KindPreempt, "FALSE"},
	{gcpMaintenance, KindMaintenance, "NONE"},
}

// Watch long-polls both values at once (wait_for_change, no polling delay).
func (w *gcpWatcher) Watch(ctx context.Context, out chan<- Notice) error {
	defer w.tr.CloseIdleConnections()
	var wg sync.WaitGroup
	for _, src := range gcpSources {
		wg.Go(func() { w.subscribe(ctx, src, out) })
	}
	wg.Wait()
	return ctx.Err()
}

// subscribe follows one value until ctx ends, re-subscribing after errors.
// last survives re-subscriptions, so a value that stays is sent once.
func (w *gcpWatcher) subscribe(ctx context.Context, src gcpSource, out chan<- Notice) {
	b := backoff{min: w.cfg.PollInterval, max: w.cfg.MaxBackoff}
	log := w.cfg.Logger.With("path", src.path)
	last, failures := "", 0
	for {
		err := w.client.SubscribeWithContext(ctx, src.path, func(ctx context.Context, v string, ok bool) error {
			if failures > 0 {
				log.Info("metadata service answering again", "failures", failures)
				failures = 0
				b.reset()
			}
			v = strings.TrimSpace(v)
			if !ok || v == "" || v == src.quiet {
				last = ""
				return nil
			}
			if v == last {
				return nil
			}
			last = v
			seen := w.cfg.Now()
			return send(ctx, out, Notice{Cloud: GCP, Kind: src.kind, Deadline: seen.Add(gcpWarning),
				Reason: src.path + ": " + v, SeenAt: seen})
		})
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			// The value was deleted (404); watch for it to come back.
			err = fmt.Errorf("%s: %w", src.path, metadata.NotDefinedError(src.path))
		}
		failures++
		wait := b.next()
		logFailure(log, failures, wait, err)
		if sleep(ctx, wait) != nil {
			return
		}
	}
}

// Ack is a no-op: GCP takes no acknowledgement.
func (w *gcpWatcher) Ack(context.Context, Notice) error { return nil }

// longPollRetry retries wait_for_change requests itself until they give a
// 200 or a 404 or ctx ends. The SDK's subscribe loop sleeps five seconds,
// deaf to ctx, after any other failure; retrying here keeps that sleep from
// ever running, so Watch returns as soon as ctx ends. Bodies are read here
// so that a connection lost mid-body is retried too.
type longPollRetry struct {
	base     http.RoundTripper
	log      *slog.Logger
	min, max time.Duration
}

func (l *longPollRetry) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Query().Get("wait_for_change") != "true" {
		return l.base.RoundTrip(r)
	}
	b := backoff{min: l.min, max: l.max}
	for failures := 1; ; failures++ {
		resp, err := l.try(r)
		if err == nil {
			return resp, nil
		}
		if r.Context().Err() != nil {
			return nil, r.Context().Err()
		}
		wait := b.next()
		logFailure(l.log.With("path", r.URL.Path), failures, wait, err)
		if err := sleep(r.Context(), wait); err != nil {
			return nil, err
		}
	}
}

// try makes one request and returns it with its body in memory, or an error
// for anything but a 200 or a 404.
func (l *longPollRetry) try(r *http.Request) (*http.Response, error) {
	resp, err := l.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxDocument))
		return nil, fmt.Errorf("long poll %s: status %s", r.URL.Path, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument))
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	return resp, nil
}
