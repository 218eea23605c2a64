package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
)

// post sends body to path and returns the status and the error answer.
func post(t *testing.T, url, body string, chunked bool) (int, ErrorDetail) {
	t.Helper()
	var r io.Reader = strings.NewReader(body)
	if chunked { // no Content-Length: the server finds out by reading
		r = io.MultiReader(r)
	}
	req, err := http.NewRequest(http.MethodPost, url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Lifeboat-Epoch", "7")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb ErrorBody
	_ = json.NewDecoder(resp.Body).Decode(&eb)
	return resp.StatusCode, eb.Error
}

// TestBodyLimits: every body the API reads is refused past its bound
// with 413 and a message naming the bound, whether its length is
// announced or only found by reading; a body at the bound is read.
func TestBodyLimits(t *testing.T) {
	srv, fb := newTestServer(t, Auth{})
	fb.workloads["w"] = fsm.WorkloadSpec{ID: "w", Command: []string{"a"}}
	// A spec padded with a YAML comment to exactly n bytes.
	spec := func(n int) string {
		s := "id: big\ncommand: [a]\n#"
		return s + strings.Repeat("x", n-len(s))
	}
	for _, c := range []struct {
		name, path, body string
		want             string
	}{
		{"spec", "/v1/workloads", spec(MaxBody + 1), "a workload spec is over the limit of 1 MiB (1048576 bytes)"},
		{"result", "/v1/workloads/w/results", strings.Repeat("x", MaxResult+1), "a result is over the limit of 64 KiB (65536 bytes)"},
		{"migrate", "/v1/workloads/w/migrate", `{"to":"n2"}` + strings.Repeat(" ", MaxSmallBody), "a migrate request is over the limit of 4 KiB (4096 bytes)"},
		{"restart", "/v1/workloads/w/restart", `{}` + strings.Repeat(" ", MaxSmallBody), "a restart request is over the limit of 4 KiB (4096 bytes)"},
	} {
		for _, chunked := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s chunked=%v", c.name, chunked), func(t *testing.T) {
				status, e := post(t, srv.URL+c.path, c.body, chunked)
				if status != http.StatusRequestEntityTooLarge || e.Code != "too_large" || !strings.Contains(e.Message, c.want) {
					t.Fatalf("%d %+v, want 413 too_large saying %q", status, e, c.want)
				}
			})
		}
	}
	if status, e := post(t, srv.URL+"/v1/workloads", spec(MaxBody), true); status != http.StatusCreated {
		t.Fatalf("a spec of exactly MaxBody bytes: %d %+v", status, e)
	}
	if status, e := post(t, srv.URL+"/v1/workloads/w/migrate", `{"to":"n2"}`+strings.Repeat(" ", MaxSmallBody-11), false); status != http.StatusOK {
		t.Fatalf("a migrate request of exactly MaxSmallBody bytes: %d %+v", status, e)
	}
}

// TestSmallRequestsAreStrict: trailing data after a migrate or restart
// request is refused, as after a spec.
func TestSmallRequestsAreStrict(t *testing.T) {
	srv, _ := newTestServer(t, Auth{})
	for path, body := range map[string]string{
		"/v1/workloads/w/migrate": `{"to":"n2"} {"to":"n3"}`,
		"/v1/workloads/w/restart": `{"from_checkpoint":true}]`,
	} {
		if status, e := post(t, srv.URL+path, body, false); status != http.StatusBadRequest || !strings.Contains(e.Message, "more data") {
			t.Errorf("%s %q: %d %+v, want 400 about the trailing data", path, body, status, e)
		}
	}
}

// TestSlowBodyGets408: through WithBodyTimeout, a client that sends its
// headers and then trickles a spec is answered 408 naming the bound once
// it has passed, while other clients are served meanwhile.
func TestSlowBodyGets408(t *testing.T) {
	const bound = 300 * time.Millisecond
	fb := &fakeBackend{workloads: map[string]fsm.WorkloadSpec{}, epoch: 7}
	srv := httptest.NewServer(WithBodyTimeout(NewServer(fb, certified, nil), bound))
	t.Cleanup(srv.Close)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/workloads HTTP/1.1\r\nHost: x\r\nContent-Type: application/yaml\r\nContent-Length: 1000\r\n\r\nid: slow\n")
	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // one byte every 50 ms: the body would take 50 s
		for ctx.Err() == nil {
			if _, err := conn.Write([]byte("#")); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	cl := &Client{Base: srv.URL}
	if _, err := cl.Submit(context.Background(), []byte(goodSpec), ""); err != nil {
		t.Fatalf("another client is not served while one trickles: %v", err)
	}
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the trickling client got no answer: %v", err)
	}
	var eb ErrorBody
	_ = json.NewDecoder(resp.Body).Decode(&eb)
	if resp.StatusCode != http.StatusRequestTimeout || eb.Error.Code != "body_timeout" || !strings.Contains(eb.Error.Message, bound.String()) {
		t.Fatalf("%d %+v, want 408 body_timeout naming %v", resp.StatusCode, eb.Error, bound)
	}
	if took := time.Since(start); took > 20*bound {
		t.Fatalf("cut off after %v, want about %v", took, bound)
	}
	if _, ok := fb.workloads["slow"]; ok {
		t.Fatal("the trickled spec was submitted")
	}
}

func TestByteSize(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 bytes", 1000: "1000 bytes", 1024: "1 KiB (1024 bytes)", 4 << 10: "4 KiB (4096 bytes)",
		1 << 20: "1 MiB (1048576 bytes)", 1<<20 + 1: "1048577 bytes", 3 << 30: "3 GiB (3221225472 bytes)",
	} {
		if got := byteSize(n); got != want {
			t.Errorf("byteSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestSpecFieldBounds: a spec with a field over its admission bound is
// answered 400 naming the field and the bound, and never submitted.
func TestSpecFieldBounds(t *testing.T) {
	srv, fb := newTestServer(t, Auth{})
	args := `"a"` + strings.Repeat(`,"a"`, fsm.MaxArgs)
	for body, want := range map[string]string{
		`{"id":"w1","command":[` + args + `]}`:                                                     "command: has 1025 entries, over the limit of 1024",
		`{"id":"w2","command":["a"],"env":{"K":"` + strings.Repeat("v", fsm.MaxEnvValue+1) + `"}}`: `env["K"]: the value is 16385 bytes, over the limit of 16384`,
		`{"id":"w3","command":["a"],"checkpoint":{"mode":"criu","interval":1}}`:                    "checkpoint.interval: 1ns is below the minimum of 1s",
	} {
		status, e := post(t, srv.URL+"/v1/workloads", body, false)
		if status != http.StatusBadRequest || e.Code != "invalid" || !strings.Contains(e.Message, want) {
			t.Errorf("%.60s: %d %+v, want 400 invalid saying %q", body, status, e, want)
		}
	}
	if len(fb.workloads) != 0 {
		t.Fatalf("refused specs were submitted: %v", fb.workloads)
	}
}
