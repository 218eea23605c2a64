package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/node/cloud/emulate"
)

func TestAzureWatcher(t *testing.T) {
	clearEndpointVars(t)
	em, url := startEmulator(t, emulate.Azure)
	w, err := NewWatcher(testConfig(t, Azure, url))
	if err != nil {
		t.Fatal(err)
	}
	checkIdentity(t, w, Azure)
	out, stop := runWatch(t, w)

	p := expectPreempt(t, em, out, Azure, time.Second)
	if p.ID == "" {
		t.Fatalf("notice %+v has no EventId", p)
	}
	if err := w.Ack(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if acks := em.Acks(); !slices.Equal(acks, []string{p.ID}) {
		t.Fatalf("emulator acks %v, want [%s]", acks, p.ID)
	}
	if err := w.Ack(context.Background(), Notice{Kind: KindPreempt}); !errors.Is(err, ErrNoEventID) {
		t.Fatalf("Ack without id = %v, want ErrNoEventID", err)
	}

	// The ack changed the document; the next notice must be the maintenance.
	deadline := time.Now().Add(5 * time.Minute).Truncate(time.Second)
	if err := em.Notice(emulate.KindMaintenance, deadline); err != nil {
		t.Fatal(err)
	}
	n := next(t, out, time.Second)
	if n.Kind != KindMaintenance || !n.Doomed() || !n.Deadline.Equal(deadline) || n.ID == "" || n.ID == p.ID {
		t.Fatalf("got %+v, want a doomed maintenance with deadline %v and its own id", n, deadline)
	}
	if err := em.Notice(emulate.KindTerminate, time.Time{}); err != nil {
		t.Fatal(err)
	}
	// The maintenance is still in the document; only the terminate is new.
	if n := next(t, out, time.Second); n.Kind != KindTerminate {
		t.Fatalf("got %+v, want a terminate", n)
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Watch = %v, want context.Canceled", err)
	}
}

// Events for other VMs of the availability set are not ours.
func TestAzureIgnoresOtherVMs(t *testing.T) {
	st := &azureState{name: "me", notBefore: map[string]string{}}
	w := &azureWatcher{cfg: DefaultWatchConfig(Azure)}
	ev := func(id string, resources ...string) scheduledEvent {
		return scheduledEvent{EventID: id, EventType: "Preempt", EventStatus: "Scheduled", Resources: resources}
	}
	doc := scheduledEvents{DocumentIncarnation: 2, Events: []scheduledEvent{
		ev("other", "vm2"), ev("mine", "vm2", "me"), ev("unnamed")}}
	var ids []string
	for _, s := range w.sightings(st, doc, time.Now()) {
		ids = append(ids, s.notice.ID)
	}
	if want := []string{"mine", "unnamed"}; !slices.Equal(ids, want) {
		t.Fatalf("took events %v, want %v", ids, want)
	}
}

// Azure clears NotBefore once an event starts: that is no news, and the
// deadline stays the announced one.
func TestAzureStartedEventKeepsDeadline(t *testing.T) {
	st := azureState{notBefore: map[string]string{}}
	w := &azureWatcher{cfg: DefaultWatchConfig(Azure)}
	seen := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	ev := scheduledEvent{EventID: "e1", EventType: "Preempt", EventStatus: "Scheduled",
		NotBefore: "Tue, 01 Jan 2030 00:00:40 GMT"}
	first := w.sighting(&st, ev, seen)
	ev.EventStatus, ev.NotBefore = "Started", ""
	second := w.sighting(&st, ev, seen.Add(time.Second))
	if first.key != second.key || !second.notice.Deadline.Equal(seen.Add(40*time.Second)) {
		t.Fatalf("first %+v second %+v: want one key and the announced deadline", first, second)
	}
}

func TestAzureKind(t *testing.T) {
	for typ, kind := range map[string]string{"Preempt": KindPreempt, "Terminate": KindTerminate, "Reboot": KindMaintenance,
		"Redeploy": KindMaintenance, "Freeze": KindMaintenance, "LiveMigration": KindMaintenance} {
		if got := azureKind(typ); got != kind {
			t.Errorf("%s: %s, want %s", typ, got, kind)
		}
	}
}

func TestAzureRefusedEndpoint(t *testing.T) { testRefused(t, Azure) }

// LIFEBOAT_AZURE_METADATA_ENDPOINT is read by the watcher itself.
func TestAzureStandardVariable(t *testing.T) { testStandardVariable(t, Azure, time.Second) }

const azureEventsDoc = `{"DocumentIncarnation":3,"Events":[{"EventId":"C7061BAC-AFDC-4513-B24B-AA5F13A16123",
"EventStatus":"Scheduled","EventType":"Preempt","ResourceType":"VirtualMachine","Resources":["vm1"],
"NotBefore":"Mon, 11 Apr 2022 22:26:58 GMT","Description":"Spot eviction","EventSource":"Platform","DurationInSeconds":-1}]}`

func TestDecodeScheduledEvents(t *testing.T) {
	doc, err := decodeScheduledEvents([]byte(azureEventsDoc))
	if err != nil {
		t.Fatal(err)
	}
	if doc.DocumentIncarnation != 3 || len(doc.Events) != 1 || doc.Events[0].EventType != "Preempt" {
		t.Fatalf("%+v", doc)
	}
	if _, err := decodeScheduledEvents([]byte(`{"DocumentIncarnation":0,"Events":[]}`)); err != nil {
		t.Fatalf("empty document: %v", err)
	}
	for _, bad := range []string{
		`{"Events":[]}`,
		`{"DocumentIncarnation":-1,"Events":[]}`,
		`{"DocumentIncarnation":"1","Events":[]}`,
		`{"DocumentIncarnation":1,"Events":[{"EventType":"Preempt","EventStatus":"Scheduled"}]}`,
		`{"DocumentIncarnation":1,"Events":[{"EventId":"a","EventType":"Preempt","EventStatus":"Done"}]}`,
		`{"DocumentIncarnation":1,"Events":[{"EventId":"a","EventType":"Preempt","EventStatus":"Started","NotBefore":"2022-04-11"}]}`,
		`{"DocumentIncarnation":1,"Events":[]} x`,
		`[]`,
	} {
		if _, err := decodeScheduledEvents([]byte(bad)); !errors.Is(err, ErrBadDocument) {
			t.Errorf("%s: %v, want ErrBadDocument", bad, err)
		}
	}
}

func TestDecodeAzureCompute(t *testing.T) {
	c, err := decodeAzureCompute([]byte(`{"location":"eastus","name":"vm1","zone":"","vmSize":"Standard_D2s_v3",
		"vmId":"02aab8a4-74ef-476e-8182-f6d2ba4166a6","priority":"Spot","osProfile":{"computerName":"vm1"}}`))
	want := azureCompute{Location: "eastus", Name: "vm1", VMSize: "Standard_D2s_v3",
		VMID: "02aab8a4-74ef-476e-8182-f6d2ba4166a6", Priority: "Spot"}
	if err != nil || c != want {
		t.Fatalf("%+v, %v; want %+v", c, err, want)
	}
	for _, bad := range []string{`{"location":"eastus","name":"vm1","vmSize":"s"}`, `{"location":1}`, `null`, `{} {}`} {
		if _, err := decodeAzureCompute([]byte(bad)); !errors.Is(err, ErrBadDocument) {
			t.Errorf("%s: %v, want ErrBadDocument", bad, err)
		}
	}
}

func FuzzScheduledEvents(f *testing.F) {
	f.Add([]byte(azureEventsDoc))
	f.Add([]byte(`{"DocumentIncarnation":0,"Events":[]}`))
	f.Add([]byte(`{"DocumentIncarnation":1,"Events":[{"EventId":"a","EventType":"Freeze","EventStatus":"Started","NotBefore":""}]}`))
	f.Add([]byte(`{"DocumentIncarnation":1e3,"Events":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		doc, err := decodeScheduledEvents(b)
		if err != nil {
			if !errors.Is(err, ErrBadDocument) {
				t.Fatalf("error %v does not wrap ErrBadDocument", err)
			}
			return
		}
		if doc.DocumentIncarnation < 0 {
			t.Fatalf("accepted incarnation %d", doc.DocumentIncarnation)
		}
		for _, e := range doc.Events {
			if err := e.validate(); err != nil {
				t.Fatalf("accepted invalid event %+v: %v", e, err)
			}
			if e.NotBefore != "" {
				if _, err := time.Parse(time.RFC1123, e.NotBefore); err != nil {
					t.Fatalf("accepted NotBefore %q", e.NotBefore)
				}
			}
		}
		re, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeScheduledEvents(re)
		if err != nil || !reflect.DeepEqual(again, doc) {
			t.Fatalf("round trip %s: %+v, %v; want %+v", re, again, err, doc)
		}
	})
}

func FuzzAzureCompute(f *testing.F) {
	f.Add([]byte(`{"location":"eastus","name":"vm1","zone":"1","vmSize":"Standard_D2s_v3","vmId":"x","priority":"Regular"}`))
	f.Add([]byte(`{"location":"","name":"vm1"}`))
	f.Add([]byte(`{"compute":{"location":"eastus"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeAzureCompute(b)
		if err != nil {
			if !errors.Is(err, ErrBadDocument) {
				t.Fatalf("error %v does not wrap ErrBadDocument", err)
			}
			return
		}
		if c.Location == "" || c.Name == "" || c.VMSize == "" || c.VMID == "" {
			t.Fatalf("accepted %+v", c)
		}
		re, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if again, err := decodeAzureCompute(re); err != nil || again != c {
			t.Fatalf("round trip %s: %+v, %v; want %+v", re, again, err, c)
		}
	})
}
