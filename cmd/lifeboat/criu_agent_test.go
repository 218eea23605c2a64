package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/node/api"
	"github.com/lifeboat/lifeboat/node/host"
)

// needCRIU skips without root and CRIU, except under CI=true, where a
// missing prerequisite is a failure.
func needCRIU(t *testing.T) {
	t.Helper()
	why := ""
	switch {
	case os.Geteuid() != 0:
		why = "needs root"
	case host.FindCRIU() == "":
		why = "needs CRIU (make deps installs it)"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true: %s", why)
	}
	t.Skip(why)
}

// TestCRIUWorkloadThroughTheAgent: the real agent runs the counter at
// 64 MiB in criu mode; `lifeboat workload checkpoint` takes a CRIU
// checkpoint on the holder and `lifeboat workload restart
// --from-checkpoint` restores it, and the count continues.
func TestCRIUWorkloadThroughTheAgent(t *testing.T) {
	needCRIU(t)
	counter := buildCounter(t)
	a := &localAgent{Name: "solo", IP: "127.0.0.41", Zone: "a",
		Args: []string{"--bootstrap-expect", "1", "--voters", "1", "--api-token", writeToken}}
	startCluster(t, []*localAgent{a})
	if _, err := waitStatus(ctxFor(t, 30*time.Second), a.URL(), func(s api.Status) bool { return s.Leader == "solo" }); err != nil {
		t.Fatal(err)
	}
	spec := fmt.Sprintf("id: counter\ncommand: [%s, --port, \"18081\", --ballast-mib, \"64\"]\n"+
		"checkpoint: {mode: criu, interval: 1h}\nservice: {port: 18081}\nresources: {memory_mib: 128}\n", counter)
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(testBin, append(args, "--addr", a.URL(), "--token", writeToken)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("lifeboat %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	cli("workload", "submit", writeFile(t, "counter.yaml", spec))
	c := tokenClient(a.URL(), writeToken)
	waitWorkload(t, c, "counter", func(w api.Workload) bool { return w.State == "running" })
	for want := 1; want <= 3; want++ {
		if got := countAt(t, "127.0.0.41:18081"); got != want {
			t.Fatalf("GET / = %d, want %d", got, want)
		}
	}
	out := cli("workload", "checkpoint", "counter")
	if !strings.Contains(out, "checkpoint #1 of counter") {
		t.Fatalf("checkpoint output: %s", out)
	}
	countAt(t, "127.0.0.41:18081") // 4: after the checkpoint, gone after the restore
	out = cli("workload", "restart", "counter", "--from-checkpoint")
	if !strings.Contains(out, "restored from checkpoint #1") {
		t.Fatalf("restart output: %s", out)
	}
	if got := countAt(t, "127.0.0.41:18081"); got != 4 {
		t.Fatalf("after the CRIU restore GET / = %d, want 4 (3 checkpointed + 1)", got)
	}
	w, err := c.Workload(context.Background(), "counter")
	if err != nil || w.Checkpoint == nil || w.Checkpoint.Bytes < 64<<20 {
		t.Fatalf("the committed checkpoint should hold the 64 MiB ballast: %+v %v", w.Checkpoint, err)
	}
	cli("workload", "remove", "counter")
}

// buildCounter builds examples/counter statically (CRIU restores it
// anywhere) and returns its path.
func buildCounter(t *testing.T) string {
	t.Helper()
	counter := filepath.Join(t.TempDir(), "counter")
	build := exec.Command("go", "build", "-o", counter, "../../examples/counter")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the counter: %v\n%s", err, out)
	}
	return counter
}

// countAt GETs / until the counter answers (it may be restoring).
func countAt(t *testing.T, hostport string) int {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + hostport + "/")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				return n
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the counter at %s does not answer: %v", hostport, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
