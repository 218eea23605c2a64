package emulate

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// awsToken gets an IMDSv2 token.
func awsToken(t *testing.T, url string, ttl string) string {
	t.Helper()
	resp, body := call(t, "PUT", url+"/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": ttl}, "")
	if resp.StatusCode != 200 {
		t.Fatalf("PUT token: %d %s", resp.StatusCode, body)
	}
	return body
}

// awsGet reads a path under /latest/ with token.
func awsGet(t *testing.T, url, token, path string) (int, string) {
	t.Helper()
	resp, body := call(t, "GET", url+"/latest/"+path, map[string]string{"X-aws-ec2-metadata-token": token}, "")
	return resp.StatusCode, body
}

func TestAWSTokenFlow(t *testing.T) {
	e, url := start(t, testConfig(t, AWS))
	resp, token := call(t, "PUT", url+"/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "21600"}, "")
	if resp.StatusCode != 200 || len(token) < 40 {
		t.Fatalf("PUT token: %d %q", resp.StatusCode, token)
	}
	if got := resp.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds"); got != "21600" {
		t.Errorf("TTL header echoed as %q, want 21600", got)
	}
	if got := resp.Header.Get("Content-Type"); got != "text/plain" {
		t.Errorf("token Content-Type %q", got)
	}
	resp, body := call(t, "GET", url+"/latest/meta-data/instance-id", map[string]string{"X-aws-ec2-metadata-token": token}, "")
	if resp.StatusCode != 200 || body != "i-0e1fb0a7c0ffee123" || resp.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("instance-id: %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
	if other := awsToken(t, url, "1"); other == token {
		t.Error("two tokens are equal")
	}
	if s := e.State(); s.TokensIssued != 2 || s.Requests["/latest/api/token"] != 2 || s.Requests["/latest/meta-data/instance-id"] != 1 {
		t.Errorf("state: tokens %d, requests %v", s.TokensIssued, s.Requests)
	}
}

func TestAWSTokenRefusals(t *testing.T) {
	_, url := start(t, testConfig(t, AWS))
	ttl := "X-aws-ec2-metadata-token-ttl-seconds"
	cases := []struct {
		name   string
		method string
		header map[string]string
		want   int
	}{
		{"no ttl", "PUT", nil, 400},
		{"ttl 0", "PUT", map[string]string{ttl: "0"}, 400},
		{"ttl above 21600", "PUT", map[string]string{ttl: "21601"}, 400},
		{"ttl negative", "PUT", map[string]string{ttl: "-5"}, 400},
		{"ttl not a number", "PUT", map[string]string{ttl: "six hours"}, 400},
		{"through a proxy", "PUT", map[string]string{ttl: "60", "X-Forwarded-For": "10.1.2.3"}, 403},
		{"GET is not PUT", "GET", map[string]string{ttl: "60"}, 405},
		{"ttl 1 is fine", "PUT", map[string]string{ttl: "1"}, 200},
		{"ttl 21600 is fine", "PUT", map[string]string{ttl: "21600"}, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := call(t, c.method, url+"/latest/api/token", c.header, "")
			if resp.StatusCode != c.want {
				t.Fatalf("%d %s, want %d", resp.StatusCode, body, c.want)
			}
			if c.want != 200 && !strings.Contains(body, "<title>"+strings.TrimSpace(resp.Status[:3])+" - ") {
				t.Errorf("error body is not IMDS's page: %s", body)
			}
		})
	}
}

func TestAWSRequiresValidToken(t *testing.T) {
	clock := newFakeClock()
	cfg := testConfig(t, AWS)
	cfg.Now = clock.Now
	_, url := start(t, cfg)
	short := awsToken(t, url, "10")
	cases := []struct {
		name  string
		token string
		after time.Duration
		want  int
	}{
		{"missing", "", 0, 401},
		{"never issued", "AQAEAKnownNotIssued==", 0, 401},
		{"valid", short, 0, 200},
		{"one second before expiry", short, 9 * time.Second, 200},
		{"expired", short, time.Second, 401},
	}
	for _, c := range cases {
		clock.Advance(c.after)
		code, body := awsGet(t, url, c.token, "meta-data/instance-type")
		if code != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, code, body, c.want)
		}
		if code == 401 && !strings.Contains(body, "401 - Unauthorized") {
			t.Errorf("%s: body %s", c.name, body)
		}
	}
	if resp, _ := call(t, "POST", url+"/latest/meta-data/instance-id", nil, ""); resp.StatusCode != 405 {
		t.Errorf("POST meta-data: %d, want 405", resp.StatusCode)
	}
}

func TestAWSPaths(t *testing.T) {
	_, url := start(t, testConfig(t, AWS))
	token := awsToken(t, url, "60")
	cases := []struct {
		path string
		code int
		body string
	}{
		{"meta-data/instance-id", 200, "i-0e1fb0a7c0ffee123"},
		{"meta-data/instance-type", 200, "m5.large"},
		{"meta-data/placement/availability-zone", 200, "us-east-1a"},
		{"meta-data/placement/region", 200, "us-east-1"},
		{"meta-data/instance-life-cycle", 200, "spot"},
		{"meta-data/events/maintenance/scheduled", 200, "[]"},
		{"meta-data/autoscaling/target-lifecycle-state", 200, "InService"},
		{"meta-data/spot/instance-action", 404, ""},
		{"meta-data/spot/termination-time", 404, ""},
		{"meta-data/events/recommendations/rebalance", 404, ""},
		{"meta-data/no-such-thing", 404, ""},
		{"meta-data/instance-id/", 404, ""},
		{"meta-data/placement/", 200, "availability-zone\nregion"},
		{"meta-data/placement", 200, "availability-zone\nregion"},
		{"meta-data/events/", 200, "maintenance/"},
		{"", 200, "dynamic\nmeta-data"},
		{"dynamic/instance-identity/", 200, "document"},
	}
	for _, c := range cases {
		code, body := awsGet(t, url, token, c.path)
		if code != c.code || (c.code == 200 && body != c.body) {
			t.Errorf("%s: %d %q, want %d %q", c.path, code, body, c.code, c.body)
		}
	}
	_, list := awsGet(t, url, token, "meta-data/")
	for _, want := range []string{"instance-id", "placement/", "events/", "autoscaling/"} {
		if !strings.Contains("\n"+list+"\n", "\n"+want+"\n") {
			t.Errorf("meta-data/ lists %q, missing %s", list, want)
		}
	}
	if strings.Contains(list, "spot/") {
		t.Errorf("meta-data/ lists spot/ before any interruption: %q", list)
	}
	code, doc := awsGet(t, url, token, "dynamic/instance-identity/document")
	var id struct{ Region, AvailabilityZone, InstanceID, InstanceType, PendingTime string }
	if err := json.Unmarshal([]byte(doc), &id); code != 200 || err != nil {
		t.Fatalf("identity document: %d %v %s", code, err, doc)
	}
	if id.Region != "us-east-1" || id.AvailabilityZone != "us-east-1a" || id.InstanceID != "i-0e1fb0a7c0ffee123" || id.InstanceType != "m5.large" {
		t.Errorf("identity document: %+v", id)
	}
	if _, err := time.Parse(time.RFC3339, id.PendingTime); err != nil {
		t.Errorf("pendingTime %q: %v", id.PendingTime, err)
	}
	if resp, body := call(t, "GET", url+"/2021-07-15/meta-data/instance-id", map[string]string{"X-aws-ec2-metadata-token": token}, ""); resp.StatusCode != 404 {
		t.Errorf("dated version: %d %s (only latest is served)", resp.StatusCode, body)
	}
}

func TestAWSNotices(t *testing.T) {
	clock := newFakeClock()
	cfg := testConfig(t, AWS)
	cfg.Now = clock.Now
	e, url := start(t, cfg)
	token := awsToken(t, url, "21600")
	now := clock.Now()

	if err := e.Notice(KindRebalance, time.Time{}); err != nil {
		t.Fatal(err)
	}
	code, body := awsGet(t, url, token, "meta-data/events/recommendations/rebalance")
	if want := `{"noticeTime":"2026-03-14T15:09:26Z"}`; code != 200 || body != want {
		t.Errorf("rebalance: %d %s, want %s", code, body, want)
	}

	if err := e.Notice(KindPreempt, now.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	code, body = awsGet(t, url, token, "meta-data/spot/instance-action")
	if want := `{"action":"terminate","time":"2026-03-14T15:11:26Z"}`; code != 200 || body != want {
		t.Errorf("instance-action: %d %s, want %s", code, body, want)
	}
	if _, body = awsGet(t, url, token, "meta-data/spot/termination-time"); body != "2026-03-14T15:11:26Z" {
		t.Errorf("termination-time %q", body)
	}
	if _, body = awsGet(t, url, token, "meta-data/spot/"); body != "instance-action\ntermination-time" {
		t.Errorf("spot/ lists %q", body)
	}

	if err := e.Notice(KindMaintenance, now.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	_, body = awsGet(t, url, token, "meta-data/events/maintenance/scheduled")
	var events []map[string]string
	if err := json.Unmarshal([]byte(body), &events); err != nil || len(events) != 1 {
		t.Fatalf("scheduled: %v %s", err, body)
	}
	ev := events[0]
	if ev["Code"] != "system-reboot" || ev["State"] != "active" || ev["NotBefore"] != "16 Mar 2026 15:09:26 GMT" ||
		ev["NotAfter"] != "16 Mar 2026 17:09:26 GMT" || !strings.HasPrefix(ev["EventId"], "instance-event-") ||
		len(ev["EventId"]) != len("instance-event-")+17 || ev["Description"] == "" {
		t.Errorf("maintenance event %v", ev)
	}

	if err := e.Notice(KindTerminate, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, body = awsGet(t, url, token, "meta-data/autoscaling/target-lifecycle-state"); body != "Terminated" {
		t.Errorf("target-lifecycle-state %q after a terminate notice", body)
	}
	if err := e.Notice("reboot", time.Time{}); !errors.Is(err, ErrBadNotice) {
		t.Errorf("unknown kind: %v", err)
	}
	if err := e.Notice(KindPreempt, now.Add(-time.Second)); !errors.Is(err, ErrBadNotice) {
		t.Errorf("deadline in the past: %v", err)
	}
}

func TestAWSOnDemand(t *testing.T) {
	cfg := testConfig(t, AWS)
	cfg.Lifecycle = OnDemand
	e, url := start(t, cfg)
	token := awsToken(t, url, "60")
	if _, body := awsGet(t, url, token, "meta-data/instance-life-cycle"); body != "on-demand" {
		t.Errorf("instance-life-cycle %q", body)
	}
	for _, k := range []string{KindPreempt, KindRebalance} {
		if err := e.Notice(k, time.Time{}); !errors.Is(err, ErrUnsupportedNotice) {
			t.Errorf("%s on on-demand: %v", k, err)
		}
	}
	if err := e.Notice(KindMaintenance, time.Time{}); err != nil {
		t.Errorf("maintenance on on-demand: %v", err)
	}
	if code, _ := awsGet(t, url, token, "meta-data/spot/instance-action"); code != http.StatusNotFound {
		t.Errorf("instance-action on on-demand: %d", code)
	}
}
