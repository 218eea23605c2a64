package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// AWS instance metadata paths (under /latest/meta-data/).
const (
	awsInstanceAction = "spot/instance-action"
	awsRebalance      = "events/recommendations/rebalance"
	awsMaintenance    = "events/maintenance/scheduled"
	awsLifecycle      = "autoscaling/target-lifecycle-state"
)

// maxDocument bounds every metadata document read.
const maxDocument = 1 << 20

// awsWatcher polls IMDS through the SDK's client, which fetches and renews
// the IMDSv2 token itself.
type awsWatcher struct {
	cfg    WatchConfig
	client *imds.Client
	tr     *http.Transport
}

var _ Watcher = (*awsWatcher)(nil)

// newAWS builds the IMDS client. imds.New itself reads
// AWS_EC2_METADATA_SERVICE_ENDPOINT when Options.Endpoint is empty, so the
// endpoint is passed only when it was configured explicitly.
func newAWS(cfg WatchConfig) (*awsWatcher, error) {
	u, err := resolveEndpoint(cfg)
	if err != nil {
		return nil, err
	}
	hc, tr := newHTTPClient(u.Host)
	client := imds.New(imds.Options{
		Endpoint:   cfg.Endpoint,
		HTTPClient: hc,
		// pollLoop retries with its own backoff and logging.
		Retryer: aws.NopRetryer{},
		// IMDSv2 only: never fall back to unauthenticated v1 reads.
		EnableFallback: aws.FalseTernary,
	})
	return &awsWatcher{cfg: cfg, client: client, tr: tr}, nil
}

// get reads one metadata item; found is false on 404.
func (w *awsWatcher) get(ctx context.Context, path string) (body string, found bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
	defer cancel()
	out, err := w.client.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
	if err != nil {
		var status interface{ HTTPStatusCode() int }
		if errors.As(err, &status) && status.HTTPStatusCode() == http.StatusNotFound {
			return "", false, nil
		}
		return "", false, fmt.Errorf("imds %s: %w", path, err)
	}
	defer out.Content.Close()
	b, err := io.ReadAll(io.LimitReader(out.Content, maxDocument))
	if err != nil {
		return "", false, fmt.Errorf("imds %s: %w", path, err)
	}
	return strings.TrimSpace(string(b)), true, nil
}

// Identity reads the placement and instance items.
func (w *awsWatcher) Identity(ctx context.Context) (Identity, error) {
	defer w.tr.CloseIdleConnections()
	id := Identity{Cloud: AWS}
	for _, item := range []struct {
		path string
		to   *string
	}{
		{"placement/region", &id.Region},
		{"placement/availability-zone", &id.Zone},
		{"instance-id", &id.InstanceID},
		{"instance-type", &id.InstanceType},
		{"instance-life-cycle", &id.Lifecycle},
	} {
		v, found, err := w.get(ctx, item.path)
		if err != nil {
			return Identity{}, err
		}
		if !found || v == "" {
			return Identity{}, fmt.Errorf("imds %s: absent: %w", item.path, ErrBadDocument)
		}
		*item.to = v
	}
	if id.Lifecycle != LifecycleSpot {
		// IMDS says "on-demand" or "scheduled"; only spot is reclaimed.
		id.Lifecycle = LifecycleOnDemand
	}
	return id, nil
}

// Watch polls the four notice paths every PollInterval.
func (w *awsWatcher) Watch(ctx context.Context, out chan<- Notice) error {
	defer w.tr.CloseIdleConnections()
	var t tracker
	return pollLoop(ctx, w.cfg, func(ctx context.Context) error {
		seen, err := w.poll(ctx)
		if err != nil {
			return err
		}
		for _, n := range t.fresh(seen) {
			if err := send(ctx, out, n); err != nil {
				return err
			}
		}
		return nil
	})
}

// poll reads every path; one failure fails the whole poll, so that the
// tracker only ever compares complete pictures.
func (w *awsWatcher) poll(ctx context.Context) ([]sighting, error) {
	var all []sighting
	for _, read := range []func(context.Context, time.Time) ([]sighting, error){
		w.instanceAction, w.rebalance, w.maintenance, w.lifecycle,
	} {
		s, err := read(ctx, w.cfg.Now())
		if err != nil {
			return nil, err
		}
		all = append(all, s...)
	}
	return all, nil
}

func (w *awsWatcher) notice(kind, path, body string, deadline, seen time.Time) Notice {
	return Notice{
		Cloud: AWS, Kind: kind, Deadline: deadlineOr(deadline, seen, awsWarning),
		Reason: path + ": " + body, SeenAt: seen,
	}
}

// instanceAction: a 200 here means the instance is being reclaimed, so a
// malformed body still yields a notice (with the usual two minutes).
func (w *awsWatcher) instanceAction(ctx context.Context, seen time.Time) ([]sighting, error) {
	body, found, err := w.get(ctx, awsInstanceAction)
	if err != nil || !found {
		return nil, err
	}
	a, err := decodeInstanceAction([]byte(body))
	if err != nil {
		w.cfg.Logger.Warn("spot instance-action unreadable; assuming two minutes", "err", err)
	}
	return []sighting{{key: awsInstanceAction + "\x00" + body,
		notice: w.notice(KindPreempt, awsInstanceAction, body, a.Time, seen)}}, nil
}

func (w *awsWatcher) rebalance(ctx context.Context, seen time.Time) ([]sighting, error) {
	body, found, err := w.get(ctx, awsRebalance)
	if err != nil || !found {
		return nil, err
	}
	if _, err := decodeRebalance([]byte(body)); err != nil {
		w.cfg.Logger.Warn("rebalance recommendation unreadable", "err", err)
	}
	return []sighting{{key: awsRebalance + "\x00" + body,
		notice: w.notice(KindRebalance, awsRebalance, body, time.Time{}, seen)}}, nil
}

// maintenance yields one notice per active scheduled event.
func (w *awsWatcher) maintenance(ctx context.Context, seen time.Time) ([]sighting, error) {
	body, found, err := w.get(ctx, awsMaintenance)
	if err != nil || !found {
		return nil, err
	}
	events, err := decodeMaintenanceEvents([]byte(body))
	if err != nil {
		return nil, fmt.Errorf("imds %s: %w", awsMaintenance, err)
	}
	var out []sighting
	for _, e := range events {
		if e.State != "" && e.State != "active" {
			continue
		}
		raw, _ := json.Marshal(e)
		n := w.notice(KindMaintenance, awsMaintenance, string(raw), e.notBefore, seen)
		n.ID = e.EventID
		out = append(out, sighting{key: awsMaintenance + "\x00" + string(raw), notice: n})
	}
	return out, nil
}

func (w *awsWatcher) lifecycle(ctx context.Context, seen time.Time) ([]sighting, error) {
	body, found, err := w.get(ctx, awsLifecycle)
	if err != nil || !found || body != "Terminated" {
		return nil, err
	}
	return []sighting{{key: awsLifecycle + "\x00" + body,
		notice: w.notice(KindTerminate, awsLifecycle, body, time.Time{}, seen)}}, nil
}

// Ack is a no-op: AWS takes no acknowledgement.
func (w *awsWatcher) Ack(context.Context, Notice) error { return nil }

// instanceAction is spot/instance-action.
type instanceAction struct {
	Action string    `json:"action"`
	Time   time.Time `json:"time"`
}

// decodeInstanceAction accepts exactly {"action":"terminate|stop|hibernate","time":RFC 3339}.
func decodeInstanceAction(b []byte) (instanceAction, error) {
	var a instanceAction
	if err := json.Unmarshal(b, &a); err != nil {
		return instanceAction{}, fmt.Errorf("instance-action: %w: %w", ErrBadDocument, err)
	}
	switch {
	case a.Action != "terminate" && a.Action != "stop" && a.Action != "hibernate":
		return instanceAction{}, fmt.Errorf("instance-action: action %q: %w", a.Action, ErrBadDocument)
	case a.Time.IsZero():
		return instanceAction{}, fmt.Errorf("instance-action: no time: %w", ErrBadDocument)
	}
	return a, nil
}

// rebalance is events/recommendations/rebalance.
type rebalance struct {
	NoticeTime time.Time `json:"noticeTime"`
}

func decodeRebalance(b []byte) (rebalance, error) {
	var r rebalance
	if err := json.Unmarshal(b, &r); err != nil {
		return rebalance{}, fmt.Errorf("rebalance: %w: %w", ErrBadDocument, err)
	}
	if r.NoticeTime.IsZero() {
		return rebalance{}, fmt.Errorf("rebalance: no noticeTime: %w", ErrBadDocument)
	}
	return r, nil
}

// awsEventTime is the layout of IMDS maintenance event times
// ("21 Jan 2019 09:00:43 GMT").
const awsEventTime = "2 Jan 2006 15:04:05 GMT"

// maintenanceEvent is one entry of events/maintenance/scheduled.
type maintenanceEvent struct {
	Code        string `json:"Code"`
	Description string `json:"Description"`
	EventID     string `json:"EventId"`
	NotBefore   string `json:"NotBefore"`
	NotAfter    string `json:"NotAfter,omitempty"`
	State       string `json:"State,omitempty"`

	notBefore time.Time
}

// decodeMaintenanceEvents accepts a JSON list of events, each with an
// EventId, a Code and a NotBefore in IMDS's layout.
func decodeMaintenanceEvents(b []byte) ([]maintenanceEvent, error) {
	var events []maintenanceEvent
	if err := json.Unmarshal(b, &events); err != nil {
		return nil, fmt.Errorf("maintenance events: %w: %w", ErrBadDocument, err)
	}
	for i := range events {
		e := &events[i]
		if e.EventID == "" || e.Code == "" {
			return nil, fmt.Errorf("maintenance event %d: EventId and Code are required: %w", i, ErrBadDocument)
		}
		t, err := time.Parse(awsEventTime, e.NotBefore)
		if err != nil {
			return nil, fmt.Errorf("maintenance event %s: NotBefore: %w: %w", e.EventID, ErrBadDocument, err)
		}
		e.notBefore = t
	}
	return events, nil
}
