package cloud

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Azure Instance Metadata Service paths, with the API versions whose
// document shapes the decoders below accept.
const (
	azureEventsPath  = "/metadata/scheduledevents?api-version=2020-07-01"
	azureComputePath = "/metadata/instance/compute?api-version=2021-02-01"
)

// azureWatcher polls Scheduled Events over plain net/http (Azure has no
// Go SDK for IMDS).
type azureWatcher struct {
	cfg  WatchConfig
	base *url.URL
	hc   *http.Client
	tr   *http.Transport
}

var _ Watcher = (*azureWatcher)(nil)

func newAzure(cfg WatchConfig) (*azureWatcher, error) {
	u, err := resolveEndpoint(cfg)
	if err != nil {
		return nil, err
	}
	hc, tr := newHTTPClient(u.Host)
	return &azureWatcher{cfg: cfg, base: u, hc: hc, tr: tr}, nil
}

// do sends one request with the Metadata header and returns the body of a
// 2xx answer.
func (w *azureWatcher) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, w.base.String()+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Metadata", "true")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := w.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("azure %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument))
	if err != nil {
		return nil, fmt.Errorf("azure %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("azure %s %s: status %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}

func (w *azureWatcher) compute(ctx context.Context) (azureCompute, error) {
	b, err := w.do(ctx, http.MethodGet, azureComputePath, nil)
	if err != nil {
		return azureCompute{}, err
	}
	return decodeAzureCompute(b)
}

// Identity reads the compute document.
func (w *azureWatcher) Identity(ctx context.Context) (Identity, error) {
	defer w.tr.CloseIdleConnections()
	c, err := w.compute(ctx)
	if err != nil {
		return Identity{}, err
	}
	lifecycle := LifecycleOnDemand
	if c.Priority == "Spot" || c.Priority == "Low" {
		lifecycle = LifecycleSpot
	}
	return Identity{Cloud: Azure, Region: c.Location, Zone: c.Zone, InstanceID: c.VMID,
		InstanceType: c.VMSize, Lifecycle: lifecycle}, nil
}

// azureState is one Watch call's memory.
type azureState struct {
	name        string // this VM's name, to pick its events out of the set's
	incarnation int
	haveDoc     bool
	tracker     tracker
	// notBefore remembers each event's last announced time: Azure clears
	// NotBefore once an event has started, which is no news.
	notBefore map[string]string
}

// Watch polls Scheduled Events every PollInterval.
func (w *azureWatcher) Watch(ctx context.Context, out chan<- Notice) error {
	defer w.tr.CloseIdleConnections()
	st := &azureState{notBefore: map[string]string{}}
	return pollLoop(ctx, w.cfg, func(ctx context.Context) error { return w.poll(ctx, st, out) })
}

func (w *azureWatcher) poll(ctx context.Context, st *azureState, out chan<- Notice) error {
	if st.name == "" {
		c, err := w.compute(ctx)
		if err != nil {
			return err
		}
		st.name = c.Name
	}
	b, err := w.do(ctx, http.MethodGet, azureEventsPath, nil)
	if err != nil {
		return err
	}
	doc, err := decodeScheduledEvents(b)
	if err != nil {
		return err
	}
	if st.haveDoc && doc.DocumentIncarnation == st.incarnation {
		return nil
	}
	for _, n := range st.tracker.fresh(w.sightings(st, doc, w.cfg.Now())) {
		if err := send(ctx, out, n); err != nil {
			return err
		}
	}
	st.incarnation, st.haveDoc = doc.DocumentIncarnation, true
	return nil
}

// sightings picks this VM's events out of the document, which lists the
// events of every VM in the availability set.
func (w *azureWatcher) sightings(st *azureState, doc scheduledEvents, seen time.Time) []sighting {
	var out []sighting
	for _, e := range doc.Events {
		if len(e.Resources) > 0 && !slices.Contains(e.Resources, st.name) {
			continue
		}
		out = append(out, w.sighting(st, e, seen))
	}
	for id := range st.notBefore {
		if !slices.ContainsFunc(doc.Events, func(e scheduledEvent) bool { return e.EventID == id }) {
			delete(st.notBefore, id) // the event is over
		}
	}
	return out
}

func (w *azureWatcher) sighting(st *azureState, e scheduledEvent, seen time.Time) sighting {
	nb := e.NotBefore
	if nb == "" {
		nb = st.notBefore[e.EventID]
	} else {
		st.notBefore[e.EventID] = nb
	}
	var deadline time.Time
	if nb != "" {
		deadline, _ = time.Parse(time.RFC1123, nb) // checked by the decoder
	}
	raw, _ := json.Marshal(e)
	return sighting{
		key: strings.Join([]string{e.EventID, e.EventType, nb}, "\x00"),
		notice: Notice{Cloud: Azure, Kind: azureKind(e.EventType), Deadline: deadlineOr(deadline, seen, azureWarning),
			Reason: "scheduledevents: " + string(raw), ID: e.EventID, SeenAt: seen},
	}
}

// azureKind maps an EventType. Types newer than this code are treated as
// maintenance: the platform is about to do something to the VM.
func azureKind(eventType string) string {
	switch eventType {
	case "Preempt":
		return KindPreempt
	case "Terminate":
		return KindTerminate
	default: // Reboot, Redeploy, Freeze, and any new type
		return KindMaintenance
	}
}

// Ack approves n's event so that the platform goes ahead at once.
func (w *azureWatcher) Ack(ctx context.Context, n Notice) error {
	if n.ID == "" {
		return fmt.Errorf("azure ack of %s notice: %w", n.Kind, ErrNoEventID)
	}
	body, err := json.Marshal(startRequests{StartRequests: []startRequest{{EventID: n.ID}}})
	if err != nil {
		return err
	}
	_, err = w.do(ctx, http.MethodPost, azureEventsPath, body)
	return err
}

type startRequests struct {
	StartRequests []startRequest `json:"StartRequests"`
}

type startRequest struct {
	EventID string `json:"EventId"`
}

// scheduledEvents is the Scheduled Events document (api-version 2020-07-01).
type scheduledEvents struct {
	DocumentIncarnation int              `json:"DocumentIncarnation"`
	Events              []scheduledEvent `json:"Events"`
}

type scheduledEvent struct {
	EventID           string   `json:"EventId"`
	EventType         string   `json:"EventType"`
	ResourceType      string   `json:"ResourceType"`
	Resources         []string `json:"Resources"`
	EventStatus       string   `json:"EventStatus"`
	NotBefore         string   `json:"NotBefore"`
	Description       string   `json:"Description"`
	EventSource       string   `json:"EventSource"`
	DurationInSeconds int      `json:"DurationInSeconds"`
}

// decodeScheduledEvents accepts one JSON object with a non-negative
// DocumentIncarnation and an Events list whose entries each have an
// EventId, an EventType, a Scheduled or Started status and a NotBefore that
// is empty or RFC 1123. Unknown fields are ignored, so that a field Azure
// adds cannot hide a preemption.
func decodeScheduledEvents(b []byte) (scheduledEvents, error) {
	var raw struct {
		DocumentIncarnation *int             `json:"DocumentIncarnation"`
		Events              []scheduledEvent `json:"Events"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return scheduledEvents{}, fmt.Errorf("scheduledevents: %w: %w", ErrBadDocument, err)
	}
	if raw.DocumentIncarnation == nil || *raw.DocumentIncarnation < 0 {
		return scheduledEvents{}, fmt.Errorf("scheduledevents: DocumentIncarnation missing or negative: %w", ErrBadDocument)
	}
	for i, e := range raw.Events {
		if err := e.validate(); err != nil {
			return scheduledEvents{}, fmt.Errorf("scheduledevents: event %d: %w", i, err)
		}
	}
	return scheduledEvents{DocumentIncarnation: *raw.DocumentIncarnation, Events: raw.Events}, nil
}

func (e scheduledEvent) validate() error {
	switch {
	case e.EventID == "" || e.EventType == "":
		return fmt.Errorf("EventId and EventType are required: %w", ErrBadDocument)
	case e.EventStatus != "Scheduled" && e.EventStatus != "Started":
		return fmt.Errorf("EventStatus %q: %w", e.EventStatus, ErrBadDocument)
	case e.DurationInSeconds < -1:
		return fmt.Errorf("DurationInSeconds %d: %w", e.DurationInSeconds, ErrBadDocument)
	case slices.Contains(e.Resources, ""):
		return fmt.Errorf("empty resource name: %w", ErrBadDocument)
	}
	if e.NotBefore != "" {
		if _, err := time.Parse(time.RFC1123, e.NotBefore); err != nil {
			return fmt.Errorf("NotBefore: %w: %w", ErrBadDocument, err)
		}
	}
	return nil
}

// azureCompute is the part of /metadata/instance/compute this package uses.
type azureCompute struct {
	Location string `json:"location"`
	Name     string `json:"name"`
	Zone     string `json:"zone"`
	VMSize   string `json:"vmSize"`
	VMID     string `json:"vmId"`
	Priority string `json:"priority"`
}

// decodeAzureCompute accepts one JSON object with location, name, vmSize
// and vmId set; the compute document has dozens of other fields, ignored.
func decodeAzureCompute(b []byte) (azureCompute, error) {
	var c azureCompute
	if err := json.Unmarshal(b, &c); err != nil {
		return azureCompute{}, fmt.Errorf("compute: %w: %w", ErrBadDocument, err)
	}
	if c.Location == "" || c.Name == "" || c.VMSize == "" || c.VMID == "" {
		return azureCompute{}, fmt.Errorf("compute: location, name, vmSize and vmId are required: %w", ErrBadDocument)
	}
	return c, nil
}
