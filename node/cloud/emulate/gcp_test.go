package emulate

import (
	"context"
	"encoding/json"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var google = map[string]string{"Metadata-Flavor": "Google"}

// gcpGet reads a path under /computeMetadata/v1/.
func gcpGet(t *testing.T, url, path string) (*http.Response, string) {
	t.Helper()
	return call(t, "GET", url+"/computeMetadata/v1/"+path, google, "")
}

func TestGCPHeaders(t *testing.T) {
	_, url := start(t, testConfig(t, GCP))
	cases := []struct {
		name   string
		path   string
		header map[string]string
		want   int
		body   string
	}{
		{"no Metadata-Flavor", "/computeMetadata/v1/instance/id", nil, 403, "Missing Metadata-Flavor:Google header"},
		{"wrong Metadata-Flavor", "/computeMetadata/v1/instance/id", map[string]string{"Metadata-Flavor": "google"}, 403, "Missing Metadata-Flavor"},
		{"through a proxy", "/computeMetadata/v1/instance/id", map[string]string{"Metadata-Flavor": "Google", "X-Forwarded-For": "10.0.0.9"}, 403, "X-Forwarded-For"},
		{"root probe needs no header", "/", nil, 200, "computeMetadata/\n"},
		{"the value", "/computeMetadata/v1/instance/id", google, 200, "4520031799277581759"},
		{"unknown path", "/computeMetadata/v1/instance/nothing", google, 404, "was not found"},
		{"outside v1", "/computeMetadata/v2/instance/id", google, 404, "was not found"},
		{"bad parameter", "/computeMetadata/v1/instance/id?wait_for_change=maybe", google, 400, "wait_for_change"},
		{"bad timeout", "/computeMetadata/v1/instance/id?wait_for_change=true&timeout_sec=0", google, 400, "timeout_sec"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := call(t, "GET", url+c.path, c.header, "")
			if resp.StatusCode != c.want || !strings.Contains(body, c.body) {
				t.Errorf("%d %q, want %d containing %q", resp.StatusCode, body, c.want, c.body)
			}
			if got := resp.Header.Get("Metadata-Flavor"); got != "Google" {
				t.Errorf("answer's Metadata-Flavor %q", got)
			}
			if c.want == 200 && c.path != "/" && len(resp.Header.Get("ETag")) != 16 {
				t.Errorf("ETag %q", resp.Header.Get("ETag"))
			}
		})
	}
	if resp, _ := call(t, "POST", url+"/computeMetadata/v1/instance/id", google, ""); resp.StatusCode != 405 {
		t.Errorf("POST: %d, want 405", resp.StatusCode)
	}
}

func TestGCPPaths(t *testing.T) {
	_, url := start(t, testConfig(t, GCP))
	cases := []struct{ path, want string }{
		{"instance/preempted", "FALSE"},
		{"instance/maintenance-event", "NONE"},
		{"instance/zone", "projects/271828182845/zones/us-central1-a"},
		{"instance/machine-type", "projects/271828182845/machineTypes/e2-standard-2"},
		{"instance/id", "4520031799277581759"},
		{"instance/name", "lifeboat-vm"},
		{"instance/scheduling/preemptible", "TRUE"},
		{"instance/scheduling/provisioning-model", "SPOT"},
		{"instance/scheduling/", "automatic-restart\non-host-maintenance\npreemptible\nprovisioning-model\n"},
		{"instance/attributes/", ""},
		{"project/project-id", "lifeboat-emulated"},
		{"project/numeric-project-id", "271828182845"},
		{"", "instance/\nproject/\n"},
		{"instance/id?alt=json", "4520031799277581759"},
		{"instance/preempted?alt=json", `"FALSE"`},
	}
	for _, c := range cases {
		resp, body := gcpGet(t, url, c.path)
		if resp.StatusCode != 200 || body != c.want {
			t.Errorf("%s: %d %q, want %q", c.path, resp.StatusCode, body, c.want)
		}
	}
	resp, _ := gcpGet(t, url, "instance/scheduling?recursive=true")
	if resp.StatusCode != 301 || resp.Header.Get("Location") != "/computeMetadata/v1/instance/scheduling/?recursive=true" {
		t.Errorf("directory without slash: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	cfg := testConfig(t, GCP)
	cfg.Lifecycle = OnDemand
	_, url2 := start(t, cfg)
	for path, want := range map[string]string{"instance/scheduling/preemptible": "FALSE", "instance/scheduling/provisioning-model": "STANDARD"} {
		if _, body := gcpGet(t, url2, path); body != want {
			t.Errorf("on-demand %s: %q, want %q", path, body, want)
		}
	}
}

func TestGCPRecursive(t *testing.T) {
	_, url := start(t, testConfig(t, GCP))
	resp, body := gcpGet(t, url, "instance/?recursive=true")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s %q", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
	var inst struct {
		ID                uint64 `json:"id"`
		Name, Zone        string
		MachineType       string `json:"machineType"`
		Preempted         string `json:"preempted"`
		MaintenanceEvent  string `json:"maintenanceEvent"`
		Tags              []string
		NetworkInterfaces []struct{ IP string } `json:"networkInterfaces"`
		Scheduling        struct {
			Preemptible       string `json:"preemptible"`
			ProvisioningModel string `json:"provisioningModel"`
			OnHostMaintenance string `json:"onHostMaintenance"`
		}
	}
	if err := json.Unmarshal([]byte(body), &inst); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	if inst.ID != 4520031799277581759 || inst.Name != "lifeboat-vm" || inst.Zone != "projects/271828182845/zones/us-central1-a" ||
		inst.Preempted != "FALSE" || inst.MaintenanceEvent != "NONE" || inst.Tags == nil || len(inst.NetworkInterfaces) != 1 ||
		inst.Scheduling.ProvisioningModel != "SPOT" || inst.Scheduling.Preemptible != "TRUE" || inst.Scheduling.OnHostMaintenance != "TERMINATE" {
		t.Errorf("instance/?recursive=true: %+v from %s", inst, body)
	}
	_, body = gcpGet(t, url, "?recursive=true")
	var root struct {
		Project struct {
			ProjectID string `json:"projectId"`
			Numeric   int64  `json:"numericProjectId"`
		}
	}
	if err := json.Unmarshal([]byte(body), &root); err != nil || root.Project.ProjectID != "lifeboat-emulated" || root.Project.Numeric != 271828182845 {
		t.Errorf("root recursive: %v %+v", err, root)
	}
	if _, body = gcpGet(t, url, "instance/scheduling/?recursive=true&alt=text"); !strings.Contains(body, "provisioning-model SPOT\n") {
		t.Errorf("alt=text: %q", body)
	}
}

func TestGCPETag(t *testing.T) {
	e, url := start(t, testConfig(t, GCP))
	r1, _ := gcpGet(t, url, "instance/preempted")
	r2, _ := gcpGet(t, url, "instance/preempted")
	if r1.Header.Get("ETag") != r2.Header.Get("ETag") {
		t.Errorf("ETag changed without a change: %q %q", r1.Header.Get("ETag"), r2.Header.Get("ETag"))
	}
	rec1, _ := gcpGet(t, url, "instance/?recursive=true")
	if err := e.Notice(KindPreempt, time.Time{}); err != nil {
		t.Fatal(err)
	}
	r3, body := gcpGet(t, url, "instance/preempted")
	if body != "TRUE" || r3.Header.Get("ETag") == r1.Header.Get("ETag") {
		t.Errorf("after preemption: %q ETag %q (was %q)", body, r3.Header.Get("ETag"), r1.Header.Get("ETag"))
	}
	if rec2, _ := gcpGet(t, url, "instance/?recursive=true"); rec2.Header.Get("ETag") == rec1.Header.Get("ETag") {
		t.Error("the directory's ETag did not change with its contents")
	}
}

// waitAnswer is a wait_for_change response seen from a goroutine.
type waitAnswer struct {
	code       int
	body, etag string
	at         time.Time
	err        error
}

// gcpWaitAsync starts a GET and returns its answer on a channel.
func gcpWaitAsync(ctx context.Context, url, path string) <-chan waitAnswer {
	ch := make(chan waitAnswer, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", url+"/computeMetadata/v1/"+path, nil)
		req.Header.Set("Metadata-Flavor", "Google")
		resp, err := loopbackClient().Do(req)
		if err != nil {
			ch <- waitAnswer{err: err}
			return
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 512)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		ch <- waitAnswer{code: resp.StatusCode, body: b.String(), etag: resp.Header.Get("ETag"), at: time.Now()}
	}()
	return ch
}

func TestGCPWaitForChange(t *testing.T) {
	e, url := start(t, testConfig(t, GCP))
	r, _ := gcpGet(t, url, "instance/preempted")
	etag := r.Header.Get("ETag")

	t.Run("stale last_etag answers at once", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a := <-gcpWaitAsync(ctx, url, "instance/preempted?wait_for_change=true&last_etag=0000000000000000")
		if a.err != nil || a.code != 200 || a.body != "FALSE" || a.etag != etag {
			t.Errorf("%+v", a)
		}
	})

	t.Run("timeout_sec returns the current value", func(t *testing.T) {
		begin := time.Now()
		a := <-gcpWaitAsync(context.Background(), url, "instance/preempted?wait_for_change=true&timeout_sec=1&last_etag="+etag)
		if a.err != nil || a.code != 200 || a.body != "FALSE" || a.etag != etag {
			t.Errorf("%+v", a)
		}
		if d := a.at.Sub(begin); d < time.Second || d > 5*time.Second {
			t.Errorf("answered after %v, want about 1s", d)
		}
	})

	t.Run("a change wakes the waiter, an unrelated one does not", func(t *testing.T) {
		me, _ := gcpGet(t, url, "instance/maintenance-event")
		pre := gcpWaitAsync(context.Background(), url, "instance/preempted?wait_for_change=true&last_etag="+etag)
		maint := gcpWaitAsync(context.Background(), url, "instance/maintenance-event?wait_for_change=true&last_etag="+me.Header.Get("ETag"))
		waitFor(t, "two waiters", func() bool { return e.State().Waiters == 2 })
		maintKey := gcpReq{path: "instance/maintenance-event"}.key()
		e.mu.Lock()
		w0 := e.watches[maintKey]
		e.mu.Unlock()
		fired := time.Now()
		if err := e.Notice(KindPreempt, time.Time{}); err != nil {
			t.Fatal(err)
		}
		a := <-pre
		if a.err != nil || a.code != 200 || a.body != "TRUE" || a.etag == etag {
			t.Errorf("preempted waiter: %+v", a)
		}
		t.Logf("waiter woke %v after the notice", a.at.Sub(fired))
		if d := a.at.Sub(fired); d > time.Second {
			t.Errorf("waiter woke %v after the notice", d)
		}
		e.mu.Lock()
		w := e.watches[maintKey]
		e.mu.Unlock()
		if w == nil || w != w0 || w.waiters != 1 {
			t.Fatalf("a preemption fired the maintenance-event broadcast: before %p, after %p %+v", w0, w, w)
		}
		select {
		case a := <-maint:
			t.Fatalf("maintenance-event waiter answered on a preemption: %+v", a)
		default:
		}
		if err := e.Notice(KindMaintenance, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if a := <-maint; a.body != "TERMINATE_ON_HOST_MAINTENANCE" {
			t.Errorf("maintenance waiter: %+v", a)
		}
	})

	t.Run("without last_etag waits for the next change", func(t *testing.T) {
		ch := gcpWaitAsync(context.Background(), url, "instance/preempted?wait_for_change=true")
		waitFor(t, "a waiter", func() bool { return e.State().Waiters == 1 })
		e.Reset()
		if a := <-ch; a.body != "FALSE" {
			t.Errorf("after reset: %+v", a)
		}
	})

	t.Run("recursive directory wakes on a change below it", func(t *testing.T) {
		r, _ := gcpGet(t, url, "instance/?recursive=true")
		ch := gcpWaitAsync(context.Background(), url, "instance/?recursive=true&wait_for_change=true&last_etag="+r.Header.Get("ETag"))
		waitFor(t, "a waiter", func() bool { return e.State().Waiters == 1 })
		if err := e.Notice(KindPreempt, time.Time{}); err != nil {
			t.Fatal(err)
		}
		a := <-ch
		if !strings.Contains(a.body, `"preempted":"TRUE"`) {
			t.Errorf("recursive waiter: %+v", a)
		}
	})
}

func TestGCPWaitClientGoneFreesGoroutines(t *testing.T) {
	e, url := start(t, testConfig(t, GCP))
	r, _ := gcpGet(t, url, "instance/preempted")
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	const n = 20
	var answers []<-chan waitAnswer
	for range n {
		answers = append(answers, gcpWaitAsync(ctx, url, "instance/preempted?wait_for_change=true&last_etag="+r.Header.Get("ETag")))
	}
	waitFor(t, "all waiters", func() bool { return e.State().Waiters == n })
	if got := runtime.NumGoroutine(); got < base+n {
		t.Fatalf("%d goroutines with %d waiters, base %d: the test does not measure what it claims", got, n, base)
	}
	cancel()
	for _, ch := range answers {
		if a := <-ch; a.err == nil {
			t.Errorf("a cancelled waiter got an answer: %+v", a)
		}
	}
	waitFor(t, "the server to drop its waiters", func() bool { return e.State().Waiters == 0 })
	waitFor(t, "goroutines to return to the base", func() bool { return runtime.NumGoroutine() <= base })
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.watches) != 0 {
		t.Errorf("watches left behind: %v", e.watches)
	}
}

func TestGCPCloseAnswersWaiters(t *testing.T) {
	e, url := start(t, testConfig(t, GCP))
	var wg sync.WaitGroup
	ch := gcpWaitAsync(context.Background(), url, "instance/preempted?wait_for_change=true")
	waitFor(t, "a waiter", func() bool { return e.State().Waiters == 1 })
	wg.Go(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	a := <-ch
	wg.Wait()
	if a.err == nil && a.code != http.StatusServiceUnavailable {
		t.Errorf("waiter at Close: %+v", a)
	}
}
