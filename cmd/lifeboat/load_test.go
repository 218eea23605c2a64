package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/load"
)

// runLoadCLI runs `lifeboat load args...` and returns its exit code,
// stdout and stderr.
func runLoadCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(testBin, append([]string{"load"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, stdout.String(), stderr.String()
}

// countingServer answers with h and counts the requests it got.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestLoadCLIJSONAndCSV(t *testing.T) {
	srv, hits := countingServer(t, func(http.ResponseWriter, *http.Request) {})
	csvPath := filepath.Join(t.TempDir(), "run.csv")
	code, stdout, stderr := runLoadCLI(t, "--target", srv.URL, "--rate", "100", "--duration", "300ms", "-o", "json", "--csv", csvPath)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep struct {
		Sent    int      `json:"sent"`
		OK      int      `json:"ok"`
		Failed  int      `json:"failed"`
		P99MS   *float64 `json:"p99_ms"`
		StallMS *float64 `json:"stall_ms"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, stdout)
	}
	if rep.Sent != 30 || rep.OK != 30 || rep.Failed != 0 || rep.P99MS == nil || *rep.P99MS <= 0 || rep.StallMS == nil {
		t.Fatalf("report %s, want 30 ok with p99_ms and stall_ms", stdout)
	}
	if hits.Load() != 30 {
		t.Fatalf("server saw %d requests, want 30", hits.Load())
	}

	raw, err := os.ReadFile(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(raw), load.CSVHeader+"\n") {
		t.Fatalf("CSV starts %q, want the header %q", strings.SplitN(string(raw), "\n", 2)[0], load.CSVHeader)
	}
	rows, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+30 {
		t.Fatalf("CSV has %d rows after the header, want one per request (30)", len(rows)-1)
	}
	var prev int64
	for _, row := range rows[1:] {
		start, err := strconv.ParseInt(row[0], 10, 64)
		if err != nil || start < prev || row[2] != "200" || row[3] != "" {
			t.Fatalf("row %q: want start order, status 200, no error", row)
		}
		if lat, err := strconv.ParseInt(row[1], 10, 64); err != nil || lat <= 0 {
			t.Fatalf("row %q: bad latency_ns", row)
		}
		prev = start
	}
}

func TestLoadCLIExitStatus(t *testing.T) {
	var n atomic.Int64
	cases := []struct {
		name     string
		handler  http.HandlerFunc
		code     int
		stdout   []string
		stderrIs string
	}{
		{"all ok", func(http.ResponseWriter, *http.Request) {}, 0, []string{"ok            20", "failed        0"}, ""},
		{"backpressure is not failure", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
		}, 0, []string{"20 × 503 (20 with Retry-After, 0 without)", "failed        0"}, ""},
		{"500 fails the run", func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1)%2 == 0 {
				w.WriteHeader(http.StatusInternalServerError)
			}
		}, 1, []string{"failed        10", "10 × HTTP 500 Internal Server Error"}, "10 of 20 requests failed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv, _ := countingServer(t, c.handler)
			code, stdout, stderr := runLoadCLI(t, "--target", srv.URL, "--rate", "100", "--duration", "200ms")
			if code != c.code || !strings.Contains(stderr, c.stderrIs) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr, c.code, c.stderrIs)
			}
			for _, want := range c.stdout {
				if !strings.Contains(stdout, want) {
					t.Errorf("report lacks %q:\n%s", want, stdout)
				}
			}
		})
	}
}

func TestLoadCLIBadFlags(t *testing.T) {
	srv, hits := countingServer(t, func(http.ResponseWriter, *http.Request) {})
	missingDir := filepath.Join(t.TempDir(), "no", "such", "dir", "run.csv")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no target", nil, "--target is required"},
		{"zero rate", []string{"--target", srv.URL, "--rate", "0"}, "--rate 0"},
		{"negative rate", []string{"--target", srv.URL, "--rate", "-3"}, "--rate -3"},
		{"rate not a number", []string{"--target", srv.URL, "--rate", "fast"}, "--rate"},
		{"zero duration", []string{"--target", srv.URL, "--duration", "0s"}, "--duration 0s"},
		{"negative duration", []string{"--target", srv.URL, "--duration", "-1s"}, "--duration -1s"},
		{"malformed URL", []string{"--target", "http://[::1"}, "--target \"http://[::1\""},
		{"unsupported scheme", []string{"--target", "ftp://127.0.0.1/"}, "unsupported scheme \"ftp\""},
		{"no scheme", []string{"--target", "127.0.0.1:8080"}, "--target"},
		{"zero max-inflight", []string{"--target", srv.URL, "--max-inflight", "0"}, "--max-inflight 0"},
		{"bad output", []string{"--target", srv.URL, "-o", "yaml"}, "-o \"yaml\""},
		{"unwritable csv", []string{"--target", srv.URL, "--duration", "100ms", "--csv", missingDir}, "--csv"},
		{"extra argument", []string{"--target", srv.URL, "extra"}, "unknown command"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runLoadCLI(t, c.args...)
			if code != 2 || !strings.Contains(stderr, c.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 and %q", code, stderr, c.want)
			}
		})
	}
	if hits.Load() != 0 {
		t.Fatalf("refused runs sent %d requests", hits.Load())
	}
}

func TestLoadCLIInterruptStillReports(t *testing.T) {
	started := make(chan struct{})
	var n atomic.Int64
	srv, _ := countingServer(t, func(http.ResponseWriter, *http.Request) {
		if n.Add(1) == 5 {
			close(started)
		}
	})
	cmd := exec.Command(testBin, "load", "--target", srv.URL, "--rate", "100", "--duration", "1m")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the server saw no requests: %s", stderr.String())
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	for _, want := range []string{"interrupted after", "failed        0", "stall"} {
		if !strings.Contains(stdout.String(), want) {
			t.Fatalf("report lacks %q:\n%s", want, stdout.String())
		}
	}
}
