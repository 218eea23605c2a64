package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/node/cloud/emulate"
)

func TestAWSWatcher(t *testing.T) {
	clearEndpointVars(t)
	em, url := startEmulator(t, emulate.AWS)
	w, err := NewWatcher(testConfig(t, AWS, url))
	if err != nil {
		t.Fatal(err)
	}
	checkIdentity(t, w, AWS)
	out, stop := runWatch(t, w)

	p := expectPreempt(t, em, out, AWS, time.Second)
	if !strings.HasPrefix(p.Reason, "spot/instance-action: {") {
		t.Errorf("reason %q", p.Reason)
	}
	if err := w.Ack(context.Background(), p); err != nil {
		t.Errorf("Ack is a no-op on AWS, got %v", err)
	}

	// The preemption stays in the metadata; the next notice must be the
	// rebalance, not the preemption again.
	if err := em.Notice(emulate.KindRebalance, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if n := next(t, out, time.Second); n.Kind != KindRebalance || n.Doomed() {
		t.Fatalf("got %+v, want a rebalance that is not doomed", n)
	}

	deadline := time.Now().Add(10 * time.Minute).Truncate(time.Second)
	if err := em.Notice(emulate.KindMaintenance, deadline); err != nil {
		t.Fatal(err)
	}
	n := next(t, out, time.Second)
	if n.Kind != KindMaintenance || !n.Doomed() || !n.Deadline.Equal(deadline) || !strings.HasPrefix(n.ID, "instance-event-") {
		t.Fatalf("got %+v, want a doomed maintenance with deadline %v and an event id", n, deadline)
	}

	if err := em.Notice(emulate.KindTerminate, time.Time{}); err != nil {
		t.Fatal(err)
	}
	n = next(t, out, time.Second)
	if n.Kind != KindTerminate || !near(n.Deadline, n.SeenAt.Add(awsWarning), time.Millisecond) {
		t.Fatalf("got %+v, want a terminate two minutes after it was seen", n)
	}

	// Gone and back again is new.
	em.Reset()
	waitRequests(t, em, "/latest/meta-data/"+awsInstanceAction, 1)
	expectPreempt(t, em, out, AWS, time.Second)
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Watch = %v, want context.Canceled", err)
	}
	select {
	case n := <-out:
		t.Fatalf("unexpected notice %+v", n)
	default:
	}
}

func TestAWSRefusedEndpoint(t *testing.T) { testRefused(t, AWS) }

// imds.New reads AWS_EC2_METADATA_SERVICE_ENDPOINT itself when
// Options.Endpoint is empty.
func TestAWSStandardVariable(t *testing.T) { testStandardVariable(t, AWS, time.Second) }

func TestAWSOnDemandIdentity(t *testing.T) {
	clearEndpointVars(t)
	c := emulate.DefaultConfig(emulate.AWS)
	c.Lifecycle = emulate.OnDemand
	em, err := emulate.New(c)
	if err != nil {
		t.Fatal(err)
	}
	defer em.Close()
	url, err := em.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWatcher(testConfig(t, AWS, url))
	if err != nil {
		t.Fatal(err)
	}
	id, err := w.Identity(context.Background())
	if err != nil || id.Lifecycle != LifecycleOnDemand {
		t.Fatalf("Identity = %+v, %v; want on-demand", id, err)
	}
}

func TestDecodeInstanceAction(t *testing.T) {
	cases := []struct {
		in   string
		want instanceAction
		ok   bool
	}{
		{`{"action":"terminate","time":"2017-09-18T08:22:00Z"}`,
			instanceAction{"terminate", time.Date(2017, 9, 18, 8, 22, 0, 0, time.UTC)}, true},
		{`{"action":"hibernate","time":"2017-09-18T08:22:00Z"}`,
			instanceAction{"hibernate", time.Date(2017, 9, 18, 8, 22, 0, 0, time.UTC)}, true},
		{`{"action":"reboot","time":"2017-09-18T08:22:00Z"}`, instanceAction{}, false},
		{`{"action":"stop"}`, instanceAction{}, false},
		{`{"action":"stop","time":"18 Sep 2017"}`, instanceAction{}, false},
		{`{"action":"stop","time":"2017-09-18T08:22:00Z"} {}`, instanceAction{}, false},
		{`[]`, instanceAction{}, false},
		{``, instanceAction{}, false},
	}
	for _, c := range cases {
		got, err := decodeInstanceAction([]byte(c.in))
		if (err == nil) != c.ok || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %+v, %v; want %+v ok=%v", c.in, got, err, c.want, c.ok)
		}
		if err != nil && !errors.Is(err, ErrBadDocument) {
			t.Errorf("%s: %v does not wrap ErrBadDocument", c.in, err)
		}
	}
}

func TestDecodeMaintenanceEvents(t *testing.T) {
	doc := `[{"NotBefore":"21 Jan 2019 09:00:43 GMT","Code":"system-reboot","Description":"scheduled reboot",
		"EventId":"instance-event-0d59937288b749b32","NotAfter":"21 Jan 2019 09:17:23 GMT","State":"active"}]`
	events, err := decodeMaintenanceEvents([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || !events[0].notBefore.Equal(time.Date(2019, 1, 21, 9, 0, 43, 0, time.UTC)) {
		t.Fatalf("events %+v", events)
	}
	for _, bad := range []string{`{}`, `[{"Code":"x","NotBefore":"21 Jan 2019 09:00:43 GMT"}]`,
		`[{"EventId":"e","Code":"x","NotBefore":"2019-01-21"}]`, `[1]`} {
		if _, err := decodeMaintenanceEvents([]byte(bad)); !errors.Is(err, ErrBadDocument) {
			t.Errorf("%s: %v, want ErrBadDocument", bad, err)
		}
	}
}

func FuzzInstanceAction(f *testing.F) {
	for _, s := range []string{
		`{"action":"terminate","time":"2017-09-18T08:22:00Z"}`,
		`{"action":"stop","time":"2017-09-18T08:22:00.5+02:00"}`,
		`{"action":"hibernate","time":"0001-01-01T00:00:00Z"}`,
		`{"action":1}`, `null`, `{"ACTION":"terminate","TIME":"2017-09-18T08:22:00Z","x":[1]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := decodeInstanceAction(b)
		if err != nil {
			if !errors.Is(err, ErrBadDocument) {
				t.Fatalf("error %v does not wrap ErrBadDocument", err)
			}
			return
		}
		if a.Time.IsZero() || (a.Action != "terminate" && a.Action != "stop" && a.Action != "hibernate") {
			t.Fatalf("accepted %+v", a)
		}
		re, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeInstanceAction(re)
		if err != nil || again.Action != a.Action || !again.Time.Equal(a.Time) {
			t.Fatalf("round trip %s: %+v, %v; want %+v", re, again, err, a)
		}
	})
}

func FuzzMaintenanceEvents(f *testing.F) {
	f.Add([]byte(`[{"NotBefore":"21 Jan 2019 09:00:43 GMT","Code":"system-reboot","Description":"d","EventId":"instance-event-1","NotAfter":"21 Jan 2019 09:17:23 GMT","State":"active"}]`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{"EventId":"e","Code":"c","NotBefore":"1 Feb 2020 00:00:00 GMT"},{"EventId":"f"}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		events, err := decodeMaintenanceEvents(b)
		if err != nil {
			if !errors.Is(err, ErrBadDocument) {
				t.Fatalf("error %v does not wrap ErrBadDocument", err)
			}
			return
		}
		for _, e := range events {
			if e.EventID == "" || e.Code == "" || e.notBefore.IsZero() && e.NotBefore != "1 Jan 0001 00:00:00 GMT" {
				t.Fatalf("accepted %+v", e)
			}
		}
		re, err := json.Marshal(events)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeMaintenanceEvents(re)
		if err != nil || !reflect.DeepEqual(again, events) && !(len(again) == 0 && len(events) == 0) {
			t.Fatalf("round trip %s: %+v, %v; want %+v", re, again, err, events)
		}
	})
}
