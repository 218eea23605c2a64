package cloud

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/node/cloud/emulate"
)

func TestGCPWatcher(t *testing.T) {
	clearEndpointVars(t)
	em, url := startEmulator(t, emulate.GCP)
	w, err := NewWatcher(testConfig(t, GCP, url))
	if err != nil {
		t.Fatal(err)
	}
	checkIdentity(t, w, GCP)
	out, stop := runWatch(t, w)
	waitLongPolls(t, em, 2)

	// wait_for_change answers at once: no polling delay.
	start := time.Now()
	p := expectPreempt(t, em, out, GCP, time.Second)
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("preemption took %v to arrive, want under 100ms (long poll)", d)
	}
	if p.Reason != "instance/preempted: TRUE" || !p.Deadline.Equal(p.SeenAt.Add(gcpWarning)) {
		t.Errorf("notice %+v: want reason instance/preempted: TRUE, deadline 30s after SeenAt", p)
	}

	// The preemption stays TRUE; the next notice must be the maintenance.
	if err := em.Notice(emulate.KindMaintenance, time.Time{}); err != nil {
		t.Fatal(err)
	}
	n := next(t, out, time.Second)
	if n.Kind != KindMaintenance || !n.Doomed() || n.Reason != "instance/maintenance-event: TERMINATE_ON_HOST_MAINTENANCE" {
		t.Fatalf("got %+v, want a doomed maintenance", n)
	}
	if err := w.Ack(context.Background(), n); err != nil {
		t.Errorf("Ack is a no-op on GCP, got %v", err)
	}

	// Back to FALSE and TRUE again is a new notice.
	em.Reset()
	waitRequests(t, em, "/computeMetadata/v1/"+gcpPreempted, 1)
	expectPreempt(t, em, out, GCP, time.Second)
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Watch = %v, want context.Canceled", err)
	}
}

// The SDK's subscribe loop sleeps five seconds, deaf to ctx, once its own
// retries of a long poll (at most 3.1 s of backoff) are spent; the
// watcher's transport keeps it from getting there, so Watch still returns
// at once when ctx ends during an outage longer than that.
func TestGCPServiceGoneDuringLongPoll(t *testing.T) {
	clearEndpointVars(t)
	base := runtime.NumGoroutine()
	em, err := emulate.New(emulate.DefaultConfig(emulate.GCP))
	if err != nil {
		t.Fatal(err)
	}
	url, err := em.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWatcher(testConfig(t, GCP, url))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Watch(ctx, make(chan Notice)) }()
	waitLongPolls(t, em, 2)
	em.Close() // answers the long polls with 503, then refuses connections
	// Not synchronisation: the outage has to outlast the SDK's retries.
	time.Sleep(3200 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Watch = %v, want context.Canceled", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Watch did not return within 1s of its context ending")
	}
	checkOwnGoroutines(t)
	waitGoroutines(t, base)
}

func TestGCPDeadlineFromInjectedClock(t *testing.T) {
	clearEndpointVars(t)
	em, url := startEmulator(t, emulate.GCP)
	cfg := testConfig(t, GCP, url)
	fixed := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	cfg.Now = func() time.Time { return fixed }
	w, err := NewWatcher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := runWatch(t, w)
	if err := em.Notice(emulate.KindPreempt, time.Time{}); err != nil {
		t.Fatal(err)
	}
	n := next(t, out, time.Second)
	if !n.SeenAt.Equal(fixed) || !n.Deadline.Equal(fixed.Add(30*time.Second)) {
		t.Fatalf("SeenAt %v Deadline %v, want %v and 30s later", n.SeenAt, n.Deadline, fixed)
	}
}

func TestGCPRefusedEndpoint(t *testing.T) { testRefused(t, GCP) }

// The SDK reads GCE_METADATA_HOST (host:port) on every request.
func TestGCPStandardVariable(t *testing.T) { testStandardVariable(t, GCP, time.Second) }

func TestGCPIdentityParsing(t *testing.T) {
	id, err := gcpIdentity("projects/1/zones/europe-west4-b", "projects/1/machineTypes/n2-standard-8", "42", LifecycleSpot)
	want := Identity{Cloud: GCP, Region: "europe-west4", Zone: "europe-west4-b", InstanceID: "42",
		InstanceType: "n2-standard-8", Lifecycle: LifecycleSpot}
	if err != nil || id != want {
		t.Fatalf("%+v, %v; want %+v", id, err, want)
	}
	for _, bad := range [][3]string{{"projects/1/zones/", "m", "1"}, {"zone", "m", "1"}, {"a-b", "", "1"}, {"a-b", "m", ""}} {
		if _, err := gcpIdentity(bad[0], bad[1], bad[2], ""); !errors.Is(err, ErrBadDocument) {
			t.Errorf("%v: %v, want ErrBadDocument", bad, err)
		}
	}
}

// Instances older than the provisioning model say scheduling/preemptible.
func TestGCPLifecycleFromPreemptible(t *testing.T) {
	clearEndpointVars(t)
	em, err := emulate.New(emulate.DefaultConfig(emulate.GCP))
	if err != nil {
		t.Fatal(err)
	}
	defer em.Close()
	h := em.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/scheduling/provisioning-model") {
			w.Header().Set("Metadata-Flavor", "Google")
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	w, err := NewWatcher(testConfig(t, GCP, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	id, err := w.Identity(context.Background())
	if err != nil || id.Lifecycle != LifecycleSpot {
		t.Fatalf("Identity = %+v, %v; want spot from scheduling/preemptible", id, err)
	}
}

// waitLongPolls waits until n wait_for_change requests are blocked in the
// emulator.
func waitLongPolls(t testing.TB, em *emulate.Emulator, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for em.State().Waiters < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d long polls waiting, want %d", em.State().Waiters, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitRequests waits until the emulator has served n requests for path
// since its last Reset.
func waitRequests(t testing.TB, em *emulate.Emulator, path string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for em.State().Requests[path] < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests for %s, want %d", em.State().Requests[path], path, n)
		}
		time.Sleep(time.Millisecond)
	}
}
