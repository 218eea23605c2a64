package emulate

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"testing"
	"time"
)

var azureHeader = map[string]string{"Metadata": "true"}

const eventsURL = "/metadata/scheduledevents?api-version=2020-07-01"

// azureEvents reads the scheduled events document.
func azureEvents(t *testing.T, url string) azureDoc {
	t.Helper()
	resp, body := call(t, "GET", url+eventsURL, azureHeader, "")
	var doc azureDoc
	if err := json.Unmarshal([]byte(body), &doc); resp.StatusCode != 200 || err != nil {
		t.Fatalf("scheduled events: %d %v %s", resp.StatusCode, err, body)
	}
	return doc
}

func TestAzureErrors(t *testing.T) {
	_, url := start(t, testConfig(t, Azure))
	newest := []any{"2020-07-01", "2019-08-01", "2019-04-01"}
	cases := []struct {
		name   string
		method string
		path   string
		header map[string]string
		want   int
		error  string
		newest []any
	}{
		{"no Metadata header", "GET", eventsURL, nil, 400, "Bad request. Required metadata header not specified", nil},
		{"Metadata false", "GET", eventsURL, map[string]string{"Metadata": "false"}, 400, "Bad request. Required metadata header not specified", nil},
		{"no api-version", "GET", "/metadata/scheduledevents", azureHeader, 400,
			"Bad request. api-version was not specified in the request. For more information refer to aka.ms/azureimds", newest},
		{"unknown api-version", "GET", "/metadata/scheduledevents?api-version=2099-01-01", azureHeader, 400,
			"Bad request. api-version is invalid or was not specified in the request. For more information refer to aka.ms/azureimds", newest},
		{"instance api-version on events", "GET", "/metadata/scheduledevents?api-version=2021-02-01", azureHeader, 400,
			"Bad request. api-version is invalid or was not specified in the request. For more information refer to aka.ms/azureimds", newest},
		{"through a proxy", "GET", eventsURL, map[string]string{"Metadata": "true", "X-Forwarded-For": "10.0.0.1"}, 400, "", nil},
		{"unknown path", "GET", "/metadata/nothing?api-version=2020-07-01", azureHeader, 404, "Not found", nil},
		{"PUT", "PUT", eventsURL, azureHeader, 405, "Method not allowed", nil},
		{"POST compute", "POST", "/metadata/instance/compute?api-version=2021-02-01", azureHeader, 405, "Method not allowed", nil},
		{"leaf without format=text", "GET", "/metadata/instance/compute/location?api-version=2021-02-01", azureHeader, 400, "", nil},
		{"missing leaf", "GET", "/metadata/instance/compute/nothing?api-version=2021-02-01&format=text", azureHeader, 404, "Not found", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := call(t, c.method, url+c.path, c.header, "")
			var got map[string]any
			if err := json.Unmarshal([]byte(body), &got); err != nil || resp.StatusCode != c.want {
				t.Fatalf("%d %s (%v), want %d", resp.StatusCode, body, err, c.want)
			}
			if msg, _ := got["error"].(string); msg == "" || (c.error != "" && msg != c.error) {
				t.Errorf("error %q, want %q", msg, c.error)
			}
			if nv, _ := got["newest-versions"].([]any); !slices.Equal(nv, c.newest) {
				t.Errorf("newest-versions %v, want %v", nv, c.newest)
			}
		})
	}
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestAzureScheduledEvents(t *testing.T) {
	clock := newFakeClock()
	cfg := testConfig(t, Azure)
	cfg.Now = clock.Now
	e, url := start(t, cfg)
	if doc := azureEvents(t, url); doc.DocumentIncarnation != 1 || doc.Events == nil || len(doc.Events) != 0 {
		t.Fatalf("empty document: %+v", doc)
	}
	_, raw := call(t, "GET", url+eventsURL, azureHeader, "")
	if raw != `{"DocumentIncarnation":1,"Events":[]}`+"\n" {
		t.Errorf("empty document as sent: %q", raw)
	}
	if err := e.Notice(KindPreempt, clock.Now().Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	doc := azureEvents(t, url)
	if doc.DocumentIncarnation != 2 || len(doc.Events) != 1 {
		t.Fatalf("after a preemption: %+v", doc)
	}
	ev := doc.Events[0]
	want := azureEvent{EventID: ev.EventID, EventStatus: "Scheduled", EventType: "Preempt", ResourceType: "VirtualMachine",
		Resources: []string{"lifeboat-vm"}, NotBefore: "Sat, 14 Mar 2026 15:09:56 GMT", Description: ev.Description,
		EventSource: "Platform", DurationInSeconds: -1}
	if !uuidPattern.MatchString(ev.EventID) || ev.Description == "" || !equalEvent(ev, want) {
		t.Errorf("event %+v, want %+v", ev, want)
	}

	post := func(body string) (int, string) {
		resp, b := call(t, "POST", url+eventsURL, azureHeader, body)
		return resp.StatusCode, b
	}
	for _, bad := range []string{`{"StartRequests":[{"EventId":"not-an-event"}]}`, `{"StartRequests":`, `[]`, `{}`} {
		if code, b := post(bad); code != 400 {
			t.Errorf("POST %s: %d %s, want 400", bad, code, b)
		}
	}
	if doc := azureEvents(t, url); doc.DocumentIncarnation != 2 || len(doc.Events) != 1 {
		t.Errorf("refused POSTs changed the document: %+v", doc)
	}
	if code, b := post(`{"StartRequests":[{"EventId":"` + ev.EventID + `"}]}`); code != 200 {
		t.Fatalf("StartRequests: %d %s", code, b)
	}
	if got := e.Acks(); !slices.Equal(got, []string{ev.EventID}) {
		t.Errorf("Acks %v", got)
	}
	if doc := azureEvents(t, url); doc.DocumentIncarnation != 3 || len(doc.Events) != 0 {
		t.Errorf("after the acknowledgement: %+v", doc)
	}
	if code, _ := post(`{"StartRequests":[{"EventId":"` + ev.EventID + `"}]}`); code != 200 {
		t.Errorf("acknowledging twice: %d", code)
	}
	if doc := azureEvents(t, url); doc.DocumentIncarnation != 3 || len(e.Acks()) != 1 {
		t.Errorf("a second acknowledgement changed something: %+v %v", doc, e.Acks())
	}

	if err := e.Notice(KindTerminate, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := e.Notice(KindMaintenance, time.Time{}); err != nil {
		t.Fatal(err)
	}
	doc = azureEvents(t, url)
	if doc.DocumentIncarnation != 5 || len(doc.Events) != 2 || doc.Events[0].EventType != "Terminate" ||
		doc.Events[0].EventSource != "User" || doc.Events[1].EventType != "Reboot" {
		t.Errorf("terminate and maintenance: %+v", doc)
	}
	if err := e.Notice(KindRebalance, time.Time{}); err == nil {
		t.Error("Azure took a rebalance notice")
	}
	e.Reset()
	if doc := azureEvents(t, url); doc.DocumentIncarnation != 6 || len(doc.Events) != 0 || len(e.Acks()) != 0 {
		t.Errorf("after reset: %+v acks %v (the incarnation must not go back)", doc, e.Acks())
	}
}

func equalEvent(a, b azureEvent) bool {
	return a.EventID == b.EventID && a.EventStatus == b.EventStatus && a.EventType == b.EventType &&
		a.ResourceType == b.ResourceType && slices.Equal(a.Resources, b.Resources) && a.NotBefore == b.NotBefore &&
		a.Description == b.Description && a.EventSource == b.EventSource && a.DurationInSeconds == b.DurationInSeconds
}

func TestAzureInstance(t *testing.T) {
	_, url := start(t, testConfig(t, Azure))
	for _, path := range []string{"/metadata/instance/compute?api-version=2021-02-01", "/metadata/instance?api-version=2021-02-01"} {
		resp, body := call(t, "GET", url+path, azureHeader, "")
		var doc map[string]any
		if err := json.Unmarshal([]byte(body), &doc); resp.StatusCode != 200 || err != nil {
			t.Fatalf("%s: %d %v %s", path, resp.StatusCode, err, body)
		}
		compute := doc
		if c, ok := doc["compute"].(map[string]any); ok {
			compute = c
			if _, ok := doc["network"]; !ok {
				t.Errorf("%s has no network", path)
			}
		}
		want := map[string]string{"location": "eastus", "zone": "1", "vmSize": "Standard_D2s_v3", "name": "lifeboat-vm",
			"vmId": "02aab8a4-74ef-476e-8182-f6d2ba4166a6", "priority": "Spot", "evictionPolicy": "Deallocate"}
		for k, v := range want {
			if compute[k] != v {
				t.Errorf("%s: %s = %v, want %q", path, k, compute[k], v)
			}
		}
	}
	resp, body := call(t, "GET", url+"/metadata/instance/compute/vmSize?api-version=2021-02-01&format=text", azureHeader, "")
	if resp.StatusCode != 200 || body != "Standard_D2s_v3" {
		t.Errorf("leaf as text: %d %q", resp.StatusCode, body)
	}
	resp, body = call(t, "GET", url+"/metadata/instance/network/interface/0/ipv4/ipAddress/0/privateIpAddress?api-version=2021-02-01&format=text", azureHeader, "")
	if resp.StatusCode != 200 || body != "10.0.0.4" {
		t.Errorf("array leaf: %d %q", resp.StatusCode, body)
	}
	resp, body = call(t, "GET", url+"/metadata/versions", azureHeader, "")
	if resp.StatusCode != http.StatusOK || !regexp.MustCompile(`"apiVersions":\[.*"2021-02-01"`).MatchString(body) {
		t.Errorf("versions: %d %s", resp.StatusCode, body)
	}

	cfg := testConfig(t, Azure)
	cfg.Lifecycle = OnDemand
	_, url2 := start(t, cfg)
	_, body = call(t, "GET", url2+"/metadata/instance/compute?api-version=2021-02-01", azureHeader, "")
	var c map[string]any
	if err := json.Unmarshal([]byte(body), &c); err != nil || c["priority"] != "Regular" || c["evictionPolicy"] != "" {
		t.Errorf("on-demand compute: %v %v %v", err, c["priority"], c["evictionPolicy"])
	}
}
