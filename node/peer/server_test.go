package peer

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/node/api"
)

// caller is the peer name the test transport says every request comes
// from (the real one reads it off the verified certificate: node's
// TestPeerPortMux).
const caller = "n2"

// fakeHandler answers from its fields and records the calls it got.
type fakeHandler struct {
	mu    sync.Mutex // guards leads and calls
	leads bool
	calls []string
}

func (f *fakeHandler) record(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
}

func (f *fakeHandler) taken() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.calls
	f.calls = nil
	return out
}

func (f *fakeHandler) Leads() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "leads")
	return f.leads
}

func (f *fakeHandler) Apply(_ context.Context, req ApplyRequest) (ApplyAnswer, error) {
	f.record("apply")
	return ApplyAnswer{Index: 7, Value: json.RawMessage(fmt.Sprintf(`{"len":%d}`, len(req.Command)))}, nil
}

func (f *fakeHandler) Lease(_ context.Context, req LeaseRequest) (LeaseAnswer, error) {
	f.record("lease")
	return LeaseAnswer{Renewed: req.Node, Index: 9}, nil
}

func (f *fakeHandler) MirrorWait(ctx context.Context, req MirrorRequest) error {
	f.record("wait")
	return ctx.Err()
}

func (f *fakeHandler) Mirror(_ context.Context, req MirrorRequest) (MirrorAnswer, error) {
	f.record("mirror")
	return MirrorAnswer{Index: req.After + 1, Leader: "n1", Servers: []Server{{ID: "n1", Address: "10.0.0.1:7950", Voter: true}},
		State: json.RawMessage(`{"workloads":{}}`)}, nil
}

func (f *fakeHandler) Checkpoint(_ context.Context, req CheckpointRequest) (ActionAnswer, error) {
	f.record("checkpoint")
	return ActionAnswer{Workload: req.Workload, Epoch: 3, Seq: 5, Digest: "ab", Bytes: 4096, Freeze: time.Millisecond, Took: time.Second}, nil
}

func (f *fakeHandler) Restart(_ context.Context, req RestartRequest) (ActionAnswer, error) {
	f.record("restart")
	if !req.FromCheckpoint {
		return ActionAnswer{}, fmt.Errorf("%w: only from a checkpoint here", api.ErrConflict)
	}
	return ActionAnswer{Workload: req.Workload, PID: 42}, nil
}

func (f *fakeHandler) Migrate(_ context.Context, req MigrateRequest) (ActionAnswer, error) {
	f.record("migrate " + req.Reason)
	return ActionAnswer{Workload: req.ID, Epoch: 4}, nil
}

func (f *fakeHandler) Send(_ context.Context, req SendRequest) error {
	f.record("send")
	if req.Seq != 1 {
		return fmt.Errorf("%w: checkpoint #%d of %s is not committed", fsm.ErrNotFound, req.Seq, req.Workload)
	}
	return nil
}

func (f *fakeHandler) Results(_ context.Context, req ResultsRequest) (fsm.ResultsLog, error) {
	f.record("results")
	return fsm.ResultsLog{Trimmed: 2, TrimmedThrough: 2, Results: []fsm.Result{{Index: 3, Epoch: 1, Value: "v"}}}, nil
}

// clockHandler is a fakeHandler that also steps a clock.
type clockHandler struct{ fakeHandler }

func (c *clockHandler) Clock(_ context.Context, req ClockRequest) (ClockAnswer, error) {
	c.record("clock")
	return ClockAnswer{Offset: req.Step().String()}, nil
}

var (
	_ Handler      = (*fakeHandler)(nil)
	_ ClockHandler = (*clockHandler)(nil)
)

// serve starts h's endpoints over HTTPS, every request from caller, and
// returns its host:port and a client that trusts it.
func serve(t *testing.T, h Handler, opts Options) (string, *Client) {
	return serveAs(t, h, opts, caller)
}

// serveAs is serve with requests from name ("": no verified caller).
func serveAs(t *testing.T, h Handler, opts Options, name string) (string, *Client) {
	hh := NewHandler(h, opts)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name != "" {
			r = r.WithContext(WithCaller(r.Context(), name))
		}
		hh.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "https://"), NewClient(srv.Client(), nil)
}

func TestRoundTrip(t *testing.T) {
	h := &fakeHandler{leads: true}
	addr, c := serve(t, h, Options{Name: "n1"})
	ctx := context.Background()

	ap, err := c.Apply(ctx, addr, ApplyRequest{Command: []byte{1, 2, 3}})
	check(t, "apply", err, ap, ApplyAnswer{Index: 7, Value: json.RawMessage(`{"len":3}`)})
	le, err := c.Lease(ctx, addr, LeaseRequest{Node: "n2"})
	check(t, "lease", err, le, LeaseAnswer{Renewed: "n2", Index: 9})
	mi, err := c.Mirror(ctx, addr, MirrorRequest{After: 4, WaitMS: 10})
	check(t, "mirror", err, mi, MirrorAnswer{Index: 5, Leader: "n1",
		Servers: []Server{{ID: "n1", Address: "10.0.0.1:7950", Voter: true}}, State: json.RawMessage(`{"workloads":{}}`)})
	ck, err := c.Checkpoint(ctx, addr, CheckpointRequest{Workload: "counter"})
	check(t, "checkpoint", err, ck, ActionAnswer{Workload: "counter", Epoch: 3, Seq: 5, Digest: "ab", Bytes: 4096, Freeze: time.Millisecond, Took: time.Second})
	rs, err := c.Restart(ctx, addr, RestartRequest{Workload: "counter", FromCheckpoint: true})
	check(t, "restart", err, rs, ActionAnswer{Workload: "counter", PID: 42})
	mg, err := c.Migrate(ctx, addr, MigrateRequest{ID: "counter", To: "n3"})
	check(t, "migrate", err, mg, ActionAnswer{Workload: "counter", Epoch: 4})
	check(t, "send", c.Send(ctx, addr, SendRequest{Workload: "counter", Seq: 1, To: "n3"}), 0, 0)
	re, err := c.Results(ctx, addr, ResultsRequest{Workload: "counter"})
	check(t, "results", err, re, fsm.ResultsLog{Trimmed: 2, TrimmedThrough: 2, Results: []fsm.Result{{Index: 3, Epoch: 1, Value: "v"}}})

	want := []string{"leads", "apply", "leads", "lease", "wait", "leads", "mirror", "checkpoint", "restart",
		"migrate manual", "send", "leads", "results"}
	if got := h.taken(); !reflect.DeepEqual(got, want) {
		t.Fatalf("calls = %q\nwant    %q", got, want)
	}
}

func check[T any](t *testing.T, what string, err error, got, want T) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: got %+v, want %+v", what, got, want)
	}
}

// TestActionAnswerJSON: the holder's answer keeps the JSON of
// node/runtime.Result.
func TestActionAnswerJSON(t *testing.T) {
	b, _ := json.Marshal(ActionAnswer{Workload: "w", Epoch: 1, Seq: 2, Digest: "d", Bytes: 3, Freeze: 4, Took: 5, PID: 6})
	want := `{"workload":"w","epoch":1,"seq":2,"digest":"d","bytes":3,"freeze_ns":4,"took_ns":5,"pid":6}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

// TestLeaderOnly: apply, lease, mirror and results are refused by a peer
// that does not lead, with api.ErrNoLeader naming it and without calling
// the handler; mirror waits first. The others answer on any peer.
func TestLeaderOnly(t *testing.T) {
	h := &fakeHandler{}
	addr, c := serve(t, h, Options{Name: "n2"})
	ctx := context.Background()
	refused := map[string]error{}
	_, refused["apply"] = c.Apply(ctx, addr, ApplyRequest{Command: []byte{1}})
	_, refused["lease"] = c.Lease(ctx, addr, LeaseRequest{Node: "n2"})
	_, refused["mirror"] = c.Mirror(ctx, addr, MirrorRequest{})
	_, refused["results"] = c.Results(ctx, addr, ResultsRequest{Workload: "counter"})
	for name, err := range refused {
		if !errors.Is(err, api.ErrNoLeader) || !strings.Contains(err.Error(), "n2 does not lead") {
			t.Errorf("%s on a follower: err = %v, want api.ErrNoLeader from n2", name, err)
		}
	}
	if got := strings.Join(h.taken(), " "); got != "leads leads wait leads leads" {
		t.Fatalf("calls = %q: the handler must not be called past the refusal, and mirror waits first", got)
	}
	if _, err := c.Checkpoint(ctx, addr, CheckpointRequest{Workload: "counter"}); err != nil {
		t.Fatalf("checkpoint on a follower: %v", err)
	}
	if got := h.taken(); !reflect.DeepEqual(got, []string{"checkpoint"}) {
		t.Fatalf("calls = %q; checkpoint does not ask who leads", got)
	}
}

// TestRefusals: the server refuses what its decoders refuse, before the
// handler; handler errors keep their sentinels across the wire; a bad
// token is refused.
func TestRefusals(t *testing.T) {
	h := &fakeHandler{leads: true}
	addr, c := serve(t, h, Options{})
	ctx := context.Background()
	post := func(path, body string) error {
		ac := &api.Client{Base: "https://" + addr, HTTP: c.http}
		return ac.Do(ctx, http.MethodPost, path, []byte(body), "application/json", nil)
	}
	over := `{"node":"n1"}` + strings.Repeat(" ", limitSmall)
	for _, c := range []struct{ path, body, want string }{
		{pathLease, over, "over the limit of 1024 bytes"},
		{pathLease, `n1`, "must be a JSON object"},
		{pathApply, `{"command":"AQID","x":1}`, "unknown field"},
		{pathSend, `{"workload":"counter","seq":1,"to":"n3"} {}`, "data after"},
		{pathMirror, `{"wait_ms":-1}`, "wait_ms"},
	} {
		err, sentinel := post(c.path, c.body), api.ErrBadRequest
		if c.body == over {
			sentinel = api.ErrTooLarge // 413
		}
		if !errors.Is(err, sentinel) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %.40q: err = %v, want %v saying %q", c.path, c.body, err, sentinel, c.want)
		}
	}
	if calls := h.taken(); len(calls) != 0 {
		t.Fatalf("the handler was called for refused requests: %q", calls)
	}
	if err := c.Send(ctx, addr, SendRequest{Workload: "counter", Seq: 2, To: "n3"}); !errors.Is(err, fsm.ErrNotFound) {
		t.Errorf("send of an uncommitted checkpoint: err = %v, want fsm.ErrNotFound", err)
	}
	if _, err := c.Restart(ctx, addr, RestartRequest{Workload: "counter"}); !errors.Is(err, api.ErrConflict) {
		t.Errorf("restart: err = %v, want api.ErrConflict", err)
	}
	if _, err := c.Lease(ctx, addr, LeaseRequest{Node: "n1"}); !errors.Is(err, api.ErrForbidden) {
		t.Errorf("n2 renewing n1's lease: err = %v, want api.ErrForbidden", err)
	}
	anon, ac := serveAs(t, h, Options{}, "")
	if _, err := ac.Lease(ctx, anon, LeaseRequest{Node: "n1"}); !errors.Is(err, api.ErrUnauthorized) {
		t.Errorf("no verified caller: err = %v, want api.ErrUnauthorized", err)
	}
	var remote *api.RemoteError
	if _, err := c.Lease(ctx, addr, LeaseRequest{}); !errors.Is(err, api.ErrBadRequest) || errors.As(err, &remote) {
		t.Errorf("an invalid request must fail before it is sent: err = %v", err)
	}
}

// TestDialFailureIsNoLeader: a peer that cannot be dialled wraps
// api.ErrNoLeader (nothing was sent, a retry is safe); a peer that
// answers and then fails wraps api.ErrUnavailable, not ErrNoLeader.
func TestDialFailureIsNoLeader(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	c := NewClient(&http.Client{Timeout: 5 * time.Second}, nil)
	_, err = c.Apply(context.Background(), closed, ApplyRequest{Command: []byte{1}})
	if !errors.Is(err, api.ErrNoLeader) {
		t.Fatalf("apply to a closed port: err = %v, want api.ErrNoLeader", err)
	}

	hangup := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close() // the request was read: its outcome is unknown
	}))
	defer hangup.Close()
	c = NewClient(hangup.Client(), nil)
	_, err = c.Apply(context.Background(), strings.TrimPrefix(hangup.URL, "https://"), ApplyRequest{Command: []byte{1}})
	if !errors.Is(err, api.ErrUnavailable) || errors.Is(err, api.ErrNoLeader) {
		t.Fatalf("apply to a peer that hangs up: err = %v, want api.ErrUnavailable only", err)
	}
}

// TestClockNeedsBoth: /v1/internal/clock is mounted only when the option
// is set and the handler steps a clock.
func TestClockNeedsBoth(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		h       Handler
		unsafe  bool
		mounted bool
	}{
		{"option and handler", &clockHandler{}, true, true},
		{"handler only", &clockHandler{}, false, false},
		{"option only", &fakeHandler{}, true, false},
	}
	for _, tc := range cases {
		addr, c := serve(t, tc.h, Options{UnsafeClockControl: tc.unsafe})
		ans, err := c.Clock(ctx, addr, ClockRequest{Offset: "-90s"})
		switch {
		case tc.mounted && (err != nil || ans.Offset != "-1m30s"):
			t.Errorf("%s: %+v, %v; want the clock stepped", tc.name, ans, err)
		case !tc.mounted && !errors.Is(err, fsm.ErrNotFound):
			t.Errorf("%s: err = %v, want fsm.ErrNotFound (not mounted)", tc.name, err)
		}
	}
}

// TestApplyCarriesLargestCommand: a command of MaxCommand bytes crosses.
func TestApplyCarriesLargestCommand(t *testing.T) {
	h := &fakeHandler{leads: true}
	addr, c := serve(t, h, Options{})
	ans, err := c.Apply(context.Background(), addr, ApplyRequest{Command: bytes.Repeat([]byte{7}, MaxCommand)})
	if err != nil || string(ans.Value) != fmt.Sprintf(`{"len":%d}`, MaxCommand) {
		t.Fatalf("apply of %d bytes: %+v, %v", MaxCommand, ans, err)
	}
}

// TestProve: hello names the answering peer; Prove accepts only the name
// the certificate (certName) says, and the answer's own claim only on a
// transport without TLS.
func TestProve(t *testing.T) {
	ctx := context.Background()
	addr, c := serve(t, &fakeHandler{}, Options{Name: "n1"})
	if err := c.Prove(ctx, addr, "n1"); err != nil {
		t.Fatalf("n1 proving n1: %v", err)
	}
	if err := c.Prove(ctx, addr, "n3"); !errors.Is(err, ErrNotPeer) {
		t.Fatalf("n1 passing for n3: err = %v, want ErrNotPeer", err)
	}
	byCert := NewClient(c.http, func(*tls.ConnectionState) (string, error) { return "rogue", nil })
	if err := byCert.Prove(ctx, addr, "n1"); !errors.Is(err, ErrNotPeer) || !strings.Contains(err.Error(), "is rogue") {
		t.Fatalf("a certificate naming rogue that answers n1: err = %v, want ErrNotPeer naming rogue", err)
	}
}
