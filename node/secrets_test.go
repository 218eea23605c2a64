package node

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer collects every peer's log.
type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLogsShowNoSecret: with every peer logging at debug level, no log
// line shows an env value or a token, whatever a workload's life brings:
// a submission, a refused one, a wrong token, a workload that fails and
// restarts (with its own LIFEBOAT_TOKEN), a remove.
func TestLogsShowNoSecret(t *testing.T) {
	const secret, token, wrong = "env-secret-9f1c", "api-token-3b7e", "wrong-token-51d0"
	var logs lockedBuffer
	tc := newTestClusterWith(t, 0, func(c *Config) {
		c.APIToken = token
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}, peerSpec{"a1", "a"}, peerSpec{"b1", "b"}, peerSpec{"c1", "c"})
	eventually(t, 20*time.Second, "formed", func() error { return shape(tc.status("a1"), 3, 3, 0) })
	post := func(tok, path, body string) int {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		tc.node("b1").api.ServeHTTP(rec, req)
		return rec.Code
	}
	failing := `{"id":"leaky","command":["/bin/sh","-c","exit 3"],"env":{"PASSWORD":"` + secret + `"},"checkpoint":{"mode":"none"}}`
	for _, c := range []struct {
		tok, path, body string
		want            int
	}{
		{wrong, "/v1/workloads", failing, http.StatusUnauthorized},
		{token, "/v1/workloads", strings.Replace(failing, secret, secret+`\u0000`, 1), http.StatusBadRequest},
		{token, "/v1/workloads", strings.Replace(failing, `"none"`, `"criu","interval":"1ns"`, 1), http.StatusBadRequest},
		{token, "/v1/workloads", failing, http.StatusCreated},
		{token, "/v1/workloads", failing, http.StatusConflict},
	} {
		if got := post(c.tok, c.path, c.body); got != c.want {
			t.Fatalf("POST %s with %s: %d, want %d", c.path, c.tok, got, c.want)
		}
	}
	eventually(t, 20*time.Second, "the workload failed and restarted", func() error {
		if !strings.Contains(logs.String(), "workload exited") {
			return fmt.Errorf("no exit logged yet")
		}
		return nil
	})
	w, err := tc.node("c1").Workload(context.Background(), "leaky")
	if err != nil || w.Epoch == 0 {
		t.Fatalf("the workload: %+v %v", w, err)
	}
	workloadToken := tc.node("c1").apiAuth().WorkloadToken("leaky", w.Epoch) // its LIFEBOAT_TOKEN
	if workloadToken == "" {
		t.Fatal("the workload has no token to look for")
	}
	if err := tc.node("c1").Remove(context.Background(), "leaky"); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, s := range []string{secret, token, wrong, workloadToken} {
		if i := strings.Index(out, s); i >= 0 {
			t.Fatalf("a log shows %q: …%s…", s, out[max(0, i-300):i+len(s)])
		}
	}
}
