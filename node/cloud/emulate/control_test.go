package emulate

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// postNotice sends a control request and decodes the notice it returns.
func postNotice(t *testing.T, url, body string) (int, NoticeState, string) {
	t.Helper()
	resp, raw := call(t, "POST", url+"/lifeboat/notice", nil, body)
	var n NoticeState
	if resp.StatusCode == 200 {
		if err := json.Unmarshal([]byte(raw), &n); err != nil {
			t.Fatalf("%v in %s", err, raw)
		}
	}
	return resp.StatusCode, n, raw
}

func getState(t *testing.T, url string) State {
	t.Helper()
	resp, raw := call(t, "GET", url+"/lifeboat/state", nil, "")
	var s State
	if err := json.Unmarshal([]byte(raw), &s); resp.StatusCode != 200 || err != nil {
		t.Fatalf("state: %d %v %s", resp.StatusCode, err, raw)
	}
	return s
}

func TestControlNoticeResetState(t *testing.T) {
	_, url := start(t, testConfig(t, GCP))
	code, n, raw := postNotice(t, url, `{"kind":"preempt"}`)
	if code != 200 || n.Kind != KindPreempt || !n.Active || n.Deadline.Sub(n.At) != 30*time.Second || n.ID == "" {
		t.Fatalf("notice: %d %s", code, raw)
	}
	if _, body := gcpGet(t, url, "instance/preempted"); body != "TRUE" {
		t.Errorf("preempted %q after the notice", body)
	}
	s := getState(t, url)
	if s.Cloud != GCP || s.Zone != "us-central1-a" || len(s.Notices) != 1 || s.Notices[0].ID != n.ID ||
		s.Requests["/computeMetadata/v1/instance/preempted"] != 1 || s.Acks == nil {
		t.Errorf("state %+v", s)
	}
	for p := range s.Requests {
		if strings.HasPrefix(p, "/lifeboat/") {
			t.Errorf("control request %s counted", p)
		}
	}
	if resp, body := call(t, "POST", url+"/lifeboat/reset", nil, ""); resp.StatusCode != 204 {
		t.Fatalf("reset: %d %s", resp.StatusCode, body)
	}
	if _, body := gcpGet(t, url, "instance/preempted"); body != "FALSE" {
		t.Errorf("preempted %q after reset", body)
	}
	if s := getState(t, url); len(s.Notices) != 0 || s.Requests["/computeMetadata/v1/instance/preempted"] != 1 {
		t.Errorf("state after reset: %+v", s)
	}
}

func TestControlErrors(t *testing.T) {
	_, url := start(t, testConfig(t, GCP))
	cases := []struct {
		method, path, body string
		want               int
		msg                string
	}{
		{"POST", "/lifeboat/notice", `{"kind":"rebalance"}`, 409, "gcp gives no rebalance notice"},
		{"POST", "/lifeboat/notice", `{"kind":"terminate"}`, 409, "gcp gives no terminate notice"},
		{"POST", "/lifeboat/notice", `{"kind":"preempt","in":"soon"}`, 400, `field \"in\"`},
		{"POST", "/lifeboat/notice", `{"kind":"preempt","extra":1}`, 400, `unknown field \"extra\"`},
		{"POST", "/lifeboat/notice", ``, 400, "empty body"},
		{"GET", "/lifeboat/notice", ``, 405, "takes POST"},
		{"POST", "/lifeboat/state", ``, 405, "takes GET"},
		{"GET", "/lifeboat/reset", ``, 405, "takes POST"},
		{"GET", "/lifeboat/", ``, 404, "no control endpoint"},
	}
	for _, c := range cases {
		resp, body := call(t, c.method, url+c.path, nil, c.body)
		if resp.StatusCode != c.want || !strings.Contains(body, c.msg) || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s %s: %d %s, want %d with %q", c.method, c.path, c.body, resp.StatusCode, body, c.want, c.msg)
		}
	}
	cfg := testConfig(t, AWS)
	cfg.Lifecycle = OnDemand
	_, url2 := start(t, cfg)
	if code, _, raw := postNotice(t, url2, `{"kind":"preempt"}`); code != 409 || !strings.Contains(raw, "on-demand") {
		t.Errorf("preempting on-demand: %d %s", code, raw)
	}
}

func TestControlDeadlines(t *testing.T) {
	for cloud, want := range map[string]time.Duration{AWS: 2 * time.Minute, GCP: 30 * time.Second, Azure: 30 * time.Second} {
		_, url := start(t, testConfig(t, cloud))
		if _, n, raw := postNotice(t, url, `{"kind":"preempt"}`); n.Deadline.Sub(n.At) != want {
			t.Errorf("%s default deadline: %s, want %v", cloud, raw, want)
		}
		if _, n, raw := postNotice(t, url, `{"kind":"preempt","deadline_in":"95s"}`); n.Deadline.Sub(n.At) != 95*time.Second {
			t.Errorf("%s deadline_in: %s", cloud, raw)
		}
	}
}

func TestControlInShortRealDelay(t *testing.T) {
	e, url := start(t, testConfig(t, GCP))
	r, _ := gcpGet(t, url, "instance/preempted")
	waiter := gcpWaitAsync(t.Context(), url, "instance/preempted?wait_for_change=true&last_etag="+r.Header.Get("ETag"))
	waitFor(t, "a waiter", func() bool { return e.State().Waiters == 1 })
	begin := time.Now()
	code, n, raw := postNotice(t, url, `{"kind":"preempt","in":"300ms"}`)
	if code != 200 || n.Active {
		t.Fatalf("scheduled notice: %d %s", code, raw)
	}
	if _, body := gcpGet(t, url, "instance/preempted"); body != "FALSE" && time.Since(begin) < 300*time.Millisecond {
		t.Errorf("preempted %q before the notice's time", body)
	}
	a := <-waiter
	if elapsed := a.at.Sub(begin); a.body != "TRUE" || elapsed < 300*time.Millisecond || elapsed > 3*time.Second {
		t.Errorf("waiter: %+v after %v, want TRUE after 300ms", a, elapsed)
	}
	if s := e.State(); len(s.Notices) != 1 || !s.Notices[0].Active {
		t.Errorf("state %+v", s)
	}
}

// TestScheduledNoticeInjectedClock runs the AWS emulator in a synctest
// bubble, whose clock (Config.Now = time.Now there) and timers are fake:
// the notice appears exactly at "in", not a nanosecond before.
func TestScheduledNoticeInjectedClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t, AWS)
		e, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		h := e.Handler()
		do := func(method, path string, header map[string]string, body string) *httptest.ResponseRecorder {
			req := httptest.NewRequest(method, path, strings.NewReader(body))
			for k, v := range header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec
		}
		token := do("PUT", "/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "21600"}, "").Body.String()
		action := func() (int, string) {
			rec := do("GET", "/latest/meta-data/spot/instance-action", map[string]string{"X-aws-ec2-metadata-token": token}, "")
			return rec.Code, rec.Body.String()
		}
		begin := time.Now()
		if rec := do("POST", "/lifeboat/notice", nil, `{"kind":"preempt","in":"2s","deadline_in":"90s"}`); rec.Code != 200 {
			t.Fatalf("notice: %d %s", rec.Code, rec.Body)
		}
		time.Sleep(2*time.Second - time.Nanosecond)
		synctest.Wait()
		if code, body := action(); code != 404 {
			t.Errorf("a nanosecond early: %d %s", code, body)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		want := `{"action":"terminate","time":"` + begin.Add(92*time.Second).UTC().Format(awsTimeFormat) + `"}`
		if code, body := action(); code != 200 || body != want {
			t.Errorf("on time: %d %s, want %s", code, body, want)
		}

		at := begin.Add(time.Hour).UTC().Format(time.RFC3339)
		if rec := do("POST", "/lifeboat/notice", nil, `{"kind":"terminate","at":"`+at+`"}`); rec.Code != 200 {
			t.Fatalf("notice at: %d %s", rec.Code, rec.Body)
		}
		if rec := do("POST", "/lifeboat/notice", nil, `{"kind":"rebalance","in":"2h"}`); rec.Code != 200 {
			t.Fatalf("notice in: %d %s", rec.Code, rec.Body)
		}
		time.Sleep(time.Hour - 2*time.Second)
		synctest.Wait()
		state := func() string {
			return do("GET", "/latest/meta-data/autoscaling/target-lifecycle-state", map[string]string{"X-aws-ec2-metadata-token": token}, "").Body.String()
		}
		if got := state(); got != "Terminated" {
			t.Errorf("target-lifecycle-state at the \"at\" time: %q", got)
		}
		e.Reset() // stops the rebalance timer
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		rec := do("GET", "/latest/meta-data/events/recommendations/rebalance", map[string]string{"X-aws-ec2-metadata-token": token}, "")
		if rec.Code != 404 || state() != "InService" {
			t.Errorf("after reset: rebalance %d, lifecycle %q", rec.Code, state())
		}
	})
}

func TestCloseStopsTimersAndRefuses(t *testing.T) {
	clock := newFakeClock()
	cfg := testConfig(t, Azure)
	cfg.Now = clock.Now
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	url, err := e.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Start("127.0.0.1:0"); err == nil {
		t.Error("a second Start succeeded")
	}
	n, err := e.Schedule(KindPreempt, clock.Now().Add(time.Hour), time.Time{})
	if err != nil || n.Active || n.Deadline.Sub(n.At) != 30*time.Second {
		t.Fatalf("scheduled: %+v %v", n, err)
	}
	if doc := azureEvents(t, url); len(doc.Events) != 0 {
		t.Errorf("a notice an hour away is visible: %+v", doc)
	}
	done := make(chan error, 1)
	go func() { done <- e.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for a pending notice timer")
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := e.Notice(KindPreempt, time.Time{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Notice after Close: %v", err)
	}
	if _, err := e.Start("127.0.0.1:0"); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close: %v", err)
	}
	if _, err := loopbackClient().Get(url + "/lifeboat/state"); err == nil {
		t.Error("still serving after Close")
	}
}
