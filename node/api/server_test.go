package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
)

// fakeBackend records submissions and answers from a map.
type fakeBackend struct {
	workloads map[string]fsm.WorkloadSpec
	epoch     uint64
}

func (f *fakeBackend) Status(context.Context) (Status, error) {
	return Status{Node: "n1", Leader: "n1", Members: []Member{{Name: "n1", State: StateAlive, Role: RoleVoter}}}, nil
}
func (f *fakeBackend) Workloads(context.Context) ([]Workload, error) {
	var out []Workload
	for _, s := range f.workloads {
		out = append(out, Workload{ID: s.ID, Spec: s})
	}
	return out, nil
}
func (f *fakeBackend) Workload(_ context.Context, id string) (Workload, error) {
	s, ok := f.workloads[id]
	if !ok {
		return Workload{}, fmt.Errorf("%w: no workload %q", fsm.ErrNotFound, id)
	}
	return Workload{ID: id, Spec: s}, nil
}
func (f *fakeBackend) Submit(_ context.Context, s fsm.WorkloadSpec) (Workload, error) {
	if _, ok := f.workloads[s.ID]; ok {
		return Workload{}, fmt.Errorf("%w: workload %q", fsm.ErrExists, s.ID)
	}
	f.workloads[s.ID] = s
	return Workload{ID: s.ID, Spec: s}, nil
}
func (f *fakeBackend) Remove(_ context.Context, id string) error {
	if _, ok := f.workloads[id]; !ok {
		return fmt.Errorf("%w: %s", fsm.ErrNotFound, id)
	}
	delete(f.workloads, id)
	return nil
}
func (f *fakeBackend) AppendResult(_ context.Context, id string, epoch uint64, v string) (fsm.Result, error) {
	if epoch != f.epoch {
		return fsm.Result{}, fmt.Errorf("%w: epoch %d is not %d", fsm.ErrStaleEpoch, epoch, f.epoch)
	}
	return fsm.Result{Index: 9, Epoch: epoch, Value: v}, nil
}
func (f *fakeBackend) Migrations(context.Context) ([]fsm.Migration, error) { return nil, nil }
func (f *fakeBackend) Results(context.Context, string) (fsm.ResultsLog, error) {
	return fsm.ResultsLog{}, nil
}
func (f *fakeBackend) Ready() error { return nil }
func (f *fakeBackend) Checkpoint(_ context.Context, id string) (ActionResult, error) {
	return ActionResult{Workload: id, Seq: 1}, nil
}
func (f *fakeBackend) Restart(_ context.Context, id string, from bool) (ActionResult, error) {
	return ActionResult{Workload: id}, nil
}
func (f *fakeBackend) Drain(_ context.Context, node string) (DrainResult, error) {
	return DrainResult{Node: node, State: "draining"}, nil
}
func (f *fakeBackend) Undrain(_ context.Context, node string) (DrainResult, error) {
	return DrainResult{Node: node, State: "alive"}, nil
}
func (f *fakeBackend) Migrate(_ context.Context, id, to string) (ActionResult, error) {
	if to == "busy" {
		return ActionResult{}, fmt.Errorf("%w: %s is drained", ErrConflict, to)
	}
	return ActionResult{Workload: id, Holder: to}, nil
}

// certified is an Auth under which every caller counts as holding a
// client certificate.
var certified = Auth{ClientCert: func(*http.Request) bool { return true }}

// newTestServer serves the API over a fake backend. With no credential
// configured at all (Auth{}), every caller counts as holding a client
// certificate, for the tests of what lies past the authentication.
func newTestServer(t *testing.T, auth Auth) (*httptest.Server, *fakeBackend) {
	if auth.Write == "" && auth.Read == "" && auth.ClientCert == nil {
		auth = certified
	}
	fb := &fakeBackend{workloads: map[string]fsm.WorkloadSpec{}, epoch: 7}
	srv := httptest.NewServer(NewServer(fb, auth, nil))
	t.Cleanup(srv.Close)
	return srv, fb
}

const goodSpec = "id: counter\ncommand: [/usr/local/bin/counter, --port, \"8080\"]\ncheckpoint: {mode: app, interval: 10s}\n" +
	"service: {port: 8080, listen: 18080, protocol: http, slo: 100ms}\n"

func TestAuth(t *testing.T) {
	srv, fb := newTestServer(t, Auth{Write: "w", Read: "r"})
	ctx := context.Background()
	cases := []struct {
		name, token string
		write       bool
		want        error
	}{
		{"no token read", "", false, ErrUnauthorized},
		{"wrong token read", "x", false, ErrUnauthorized},
		{"read token read", "r", false, nil},
		{"write token read", "w", false, nil},
		{"no token write", "", true, ErrUnauthorized},
		{"read token write", "r", true, ErrForbidden},
		{"write token write", "w", true, nil},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := &Client{Base: srv.URL, Token: c.token}
			var err error
			if c.write {
				_, err = cl.Submit(ctx, []byte(strings.Replace(goodSpec, "counter", fmt.Sprintf("c%d", i), 1)), "application/yaml")
			} else {
				_, err = cl.Status(ctx)
			}
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	if len(fb.workloads) != 1 {
		t.Fatalf("only the write token may submit; workloads = %d", len(fb.workloads))
	}
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz must be open for load balancers: %v %v", resp, err)
	}
}

func TestErrorsCarryCodeAndStatus(t *testing.T) {
	srv, _ := newTestServer(t, Auth{Write: "w"})
	cl := &Client{Base: srv.URL, Token: "w"}
	ctx := context.Background()
	if _, err := cl.Submit(ctx, []byte(goodSpec), ""); err != nil {
		t.Fatal(err)
	}
	check := func(name string, err error, sentinel error, status int) {
		t.Helper()
		var re *RemoteError
		if !errors.Is(err, sentinel) || !errors.As(err, &re) || re.Status != status || re.Message == "" {
			t.Errorf("%s: err = %#v, want %v with status %d and a message", name, err, sentinel, status)
		}
	}
	_, err := cl.Submit(ctx, []byte(goodSpec), "")
	check("duplicate", err, fsm.ErrExists, http.StatusConflict)
	_, err = cl.Workload(ctx, "nope")
	check("unknown workload", err, fsm.ErrNotFound, http.StatusNotFound)
	_, err = cl.Submit(ctx, []byte("id: x\ncommand: [a]\ncheckpoint: {mode: teleport}\n"), "")
	check("bad mode", err, fsm.ErrInvalid, http.StatusBadRequest)
	_, err = cl.Submit(ctx, []byte(`{"id":"x","command":["a"],"colour":"red"}`), "application/json")
	check("unknown field", err, ErrBadRequest, http.StatusBadRequest)
	_, err = cl.AppendResult(ctx, "counter", 6, "late")
	check("stale epoch", err, fsm.ErrStaleEpoch, http.StatusConflict)
	if _, err := cl.AppendResult(ctx, "counter", 7, "ok"); err != nil {
		t.Errorf("current epoch: %v", err)
	}
	err = cl.Do(ctx, http.MethodPost, "/v1/workloads/counter/results", []byte("x"), "", nil)
	check("missing epoch header", err, ErrBadRequest, http.StatusBadRequest)
	err = cl.Do(ctx, http.MethodGet, "/v1/nothing", nil, "", nil)
	check("unknown path", err, fsm.ErrNotFound, http.StatusNotFound)
}

func TestDecodeSpec(t *testing.T) {
	spec, err := DecodeSpec(strings.NewReader(goodSpec), "")
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(spec.Service.SLO) != 100*time.Millisecond || time.Duration(spec.Checkpoint.Interval) != 10*time.Second {
		t.Fatalf("durations not parsed: %+v", spec)
	}
	if spec.Priority != fsm.PriorityNormal || spec.Standbys != 1 {
		t.Fatalf("defaults not applied: %+v", spec)
	}
	for name, body := range map[string]string{
		"empty":          "  ",
		"yaml typo":      "id: x\ncomand: [a]\n",
		"json typo":      `{"id":"x","comand":["a"]}`,
		"bad duration":   "id: x\ncommand: [a]\ncheckpoint: {mode: app, interval: soon}\n",
		"no command":     "id: x\n",
		"bad id":         "id: X Y\ncommand: [a]\n",
		"trailing junk":  "{",
		"json then more": `{"id":"x","command":["a"]} {"id":"y"}`,
		"json then junk": `{"id":"x","command":["a"]}]`,
		"two yaml docs":  "id: x\ncommand: [a]\n---\nid: y\n",
	} {
		if _, err := DecodeSpec(strings.NewReader(body), ""); err == nil {
			t.Errorf("%s: accepted %q", name, body)
		}
	}
}

// FuzzDecodeSpec: DecodeSpec never panics; it refuses with a sentinel
// that the API answers 400 or 413 (never 500); and what it accepts is
// valid, within the admission bounds, from a body within MaxBody, and
// encodes to JSON that decodes to the same spec.
func FuzzDecodeSpec(f *testing.F) {
	f.Add([]byte(goodSpec), "")
	f.Add([]byte(`{"id":"a","command":["b"],"env":{"K":"V"},"resources":{"memory_mib":64}}`), "application/json")
	f.Add([]byte("id: a\ncommand: [b]\nplacement: {prefer: [n1], clouds: [aws]}\n"), "application/yaml")
	f.Add([]byte("id: a\ncommand: [b, \"\\0\"]\nenv: {A: \"\\0\"}\n"), "application/yaml")
	f.Add([]byte("id: a\ncommand: &x [b, b, b, b]\nplacement: {prefer: *x, clouds: *x}\n"), "")
	f.Add([]byte(`{"id":"a","command":["b"]} {}`), "application/json")
	f.Fuzz(func(t *testing.T, body []byte, ctype string) {
		spec, err := DecodeSpec(strings.NewReader(string(body)), ctype)
		if err != nil {
			if _, status := Classify(err); status != http.StatusBadRequest && status != http.StatusRequestEntityTooLarge {
				t.Fatalf("DecodeSpec refused with status %d: %v", status, err)
			}
			return
		}
		if len(body) > MaxBody {
			t.Fatalf("DecodeSpec accepted a %d-byte body", len(body))
		}
		if verr := errors.Join(spec.Validate(), spec.Admit()); verr != nil {
			t.Fatalf("DecodeSpec accepted a spec that is not admissible: %v", verr)
		}
		enc, err := json.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeSpec(bytes.NewReader(enc), "application/json")
		if err != nil || !reflect.DeepEqual(normal(again), normal(spec)) {
			t.Fatalf("the accepted spec re-encoded as %s decodes to %+v, %v", enc, again, err)
		}
	})
}

// normal is s with empty lists and maps as nil, which JSON's omitempty
// does not tell apart.
func normal(s fsm.WorkloadSpec) fsm.WorkloadSpec {
	if len(s.Env) == 0 {
		s.Env = nil
	}
	if len(s.Command) == 0 {
		s.Command = nil
	}
	p := &s.Placement
	for _, l := range []*[]string{&p.Prefer, &p.AvoidZones, &p.Clouds} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	return s
}

func TestMigrateRequest(t *testing.T) {
	srv, _ := newTestServer(t, Auth{Write: "w"})
	c, err := NewClient(srv.URL, "w")
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Migrate(context.Background(), "counter", "n2")
	if err != nil || res.Holder != "n2" {
		t.Fatalf("migrate: %+v %v", res, err)
	}
	if _, err := c.Migrate(context.Background(), "counter", "busy"); !errors.Is(err, ErrConflict) {
		t.Fatalf("migrate to a drained node: %v, want ErrConflict", err)
	}
	for _, body := range []string{``, `{}`, `{"to": ""}`, `{"to": "n2", "extra": 1}`, `[1]`} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/workloads/counter/migrate", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer w")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "migrate request") {
			t.Errorf("body %q: %d %s", body, resp.StatusCode, b)
		}
	}
}

// TestReaderSeesEnvNamesOnly: the read token sees a spec's env names but
// never their values; the write token (and an open API) sees them.
func TestReaderSeesEnvNamesOnly(t *testing.T) {
	srv, fb := newTestServer(t, Auth{Write: "w", Read: "r"})
	fb.workloads["db"] = fsm.WorkloadSpec{ID: "db", Command: []string{"a"}, Env: map[string]string{"PASSWORD": "hunter2"}}
	ctx := context.Background()
	reader := &Client{Base: srv.URL, Token: "r"}
	one, err := reader.Workload(ctx, "db")
	if err != nil {
		t.Fatal(err)
	}
	all, err := reader.Workloads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range append(all, one) {
		if v, ok := w.Spec.Env["PASSWORD"]; !ok || v != Redacted {
			t.Fatalf("the reader sees env %v, want the name with its value redacted", w.Spec.Env)
		}
	}
	if fb.workloads["db"].Env["PASSWORD"] != "hunter2" {
		t.Fatal("redacting an answer changed the backend's spec")
	}
	w, err := (&Client{Base: srv.URL, Token: "w"}).Workload(ctx, "db")
	if err != nil || w.Spec.Env["PASSWORD"] != "hunter2" {
		t.Fatalf("the writer sees env %v (%v), want the value", w.Spec.Env, err)
	}
}

// TestResultSizeBound: a result over MaxResult is refused with 413 and
// never reaches the backend; one at the bound is appended.
func TestResultSizeBound(t *testing.T) {
	srv, fb := newTestServer(t, Auth{Write: "w"})
	fb.workloads["w"] = fsm.WorkloadSpec{ID: "w", Command: []string{"a"}}
	ctx := context.Background()
	cl := &Client{Base: srv.URL, Token: "w"}
	if _, err := cl.AppendResult(ctx, "w", 7, strings.Repeat("x", MaxResult)); err != nil {
		t.Fatalf("a result at the bound: %v", err)
	}
	_, err := cl.AppendResult(ctx, "w", 7, strings.Repeat("x", MaxResult+1))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a result over the bound: %v, want ErrTooLarge", err)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/workloads/w/results", strings.NewReader(strings.Repeat("x", MaxResult+1)))
	req.Header.Set("X-Lifeboat-Epoch", "7")
	req.Header.Set("Authorization", "Bearer w")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %v (%v), want 413", resp, err)
	}
	resp.Body.Close()
}

// TestWorkloadTokenScope: a workload's own token reads and appends its
// own results under its own epoch, and opens nothing else: not another
// epoch, not another workload, not a submission.
func TestWorkloadTokenScope(t *testing.T) {
	auth := Auth{Write: "w", Read: "r", WorkloadKey: []byte("k")}
	srv, fb := newTestServer(t, auth)
	fb.workloads["w"] = fsm.WorkloadSpec{ID: "w", Command: []string{"a"}}
	tok := auth.WorkloadToken("w", 7)
	if tok == "" || tok == auth.WorkloadToken("w", 8) || tok == auth.WorkloadToken("v", 7) || (Auth{}).WorkloadToken("w", 7) != "" {
		t.Fatal("workload tokens are not scoped to a workload and an epoch")
	}
	call := func(method, path, token, epoch string) int {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader("x"))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("X-Lifeboat-Epoch", epoch)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		name, method, path, epoch string
		want                      int
	}{
		{"append its own", http.MethodPost, "/v1/workloads/w/results", "7", http.StatusCreated},
		{"read its own", http.MethodGet, "/v1/workloads/w/results", "7", http.StatusOK},
		{"another epoch", http.MethodPost, "/v1/workloads/w/results", "8", http.StatusUnauthorized},
		{"another workload", http.MethodPost, "/v1/workloads/v/results", "7", http.StatusUnauthorized},
		{"a submission", http.MethodPost, "/v1/workloads", "7", http.StatusUnauthorized},
		{"the workload list", http.MethodGet, "/v1/workloads", "7", http.StatusUnauthorized},
	} {
		if got := call(c.method, c.path, tok, c.epoch); got != c.want {
			t.Errorf("%s: status %d, want %d", c.name, got, c.want)
		}
	}
}

// TestNoOpenMode: with no token configured nothing but the health checks
// answers an anonymous caller, and a client certificate (ClientCert)
// opens reads and writes.
func TestNoOpenMode(t *testing.T) {
	certified := false
	srv, fb := newTestServer(t, Auth{ClientCert: func(*http.Request) bool { return certified }})
	ctx := context.Background()
	cl := &Client{Base: srv.URL}
	if _, err := cl.Submit(ctx, []byte(goodSpec), "application/yaml"); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("anonymous submit with no token configured: %v, want unauthorized", err)
	}
	if _, err := cl.Status(ctx); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("anonymous read with no token configured: %v, want unauthorized", err)
	}
	if _, err := (&Client{Base: srv.URL, Token: ""}).Workloads(ctx); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("an empty bearer token: %v, want unauthorized", err)
	}
	if len(fb.workloads) != 0 {
		t.Fatal("a refused submit reached the backend")
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s must stay open for load balancers: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
	certified = true
	if _, err := cl.Submit(ctx, []byte(goodSpec), "application/yaml"); err != nil {
		t.Fatalf("submit with a client certificate: %v", err)
	}
}
