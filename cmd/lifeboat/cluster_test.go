package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/node/api"
)

// testBin is the lifeboat binary the process-level tests run.
var testBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lifeboat-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testBin = filepath.Join(dir, "lifeboat")
	build := exec.Command("go", "build", "-o", testBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building lifeboat:", err)
		os.Exit(1)
	}
	// The demo's service sits next to the binary, as make build puts it.
	build = exec.Command("go", "build", "-o", filepath.Join(dir, "counter"), "../../examples/counter")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the counter:", err)
		os.Exit(1)
	}
	// Every agent the tests start takes this as --api-token, and every
	// client sends it (localCluster.useCredentials).
	os.Setenv("LIFEBOAT_API_TOKEN", writeToken)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	writeToken = "w-secret-token"
	readToken  = "r-secret-token"
)

// fiveAgents are the scenario: 127.0.0.21-25, zones a, a, b, b, c.
func fiveAgents() []*localAgent {
	zones := []string{"a", "a", "b", "b", "c"}
	var out []*localAgent
	for i, z := range zones {
		out = append(out, &localAgent{
			Name: fmt.Sprintf("n%d", i+1), IP: fmt.Sprintf("127.0.0.%d", 21+i), Zone: z,
			Args: []string{"--bootstrap-expect", "3", "--spares", "1",
				"--api-token", writeToken, "--api-read-token", readToken, "--log-level", "debug"},
		})
	}
	return out
}

// startCluster starts agents and stops them when the test ends; on failure
// it prints their logs.
func startCluster(t *testing.T, agents []*localAgent) *localCluster {
	t.Helper()
	t.Setenv("LIFEBOAT_API_TOKEN", writeToken)
	lc := &localCluster{bin: testBin, dir: t.TempDir()}
	t.Cleanup(func() {
		for _, a := range lc.agents {
			_ = a.signal(syscall.SIGKILL, time.Second)
		}
		if t.Failed() {
			dumpLogs(t, lc)
		}
	})
	for _, a := range agents {
		if err := lc.start(a, agents[0].IP); err != nil {
			t.Fatal(err)
		}
	}
	return lc
}

func dumpLogs(t *testing.T, lc *localCluster) {
	for _, a := range lc.agents {
		b, _ := os.ReadFile(filepath.Join(a.dir, "agent.log"))
		lines := strings.Split(string(b), "\n")
		if len(lines) > 80 {
			lines = lines[len(lines)-80:]
		}
		t.Logf("---- %s (last lines) ----\n%s", a.Name, strings.Join(lines, "\n"))
	}
}

// wantFormed checks the shape: n alive, one leader, exactly 3
// voters in 3 distinct zones, one spare (--spares 1) and members for the
// rest.
func wantFormed(n int) func(api.Status) bool {
	return func(st api.Status) bool {
		if !formed(st, n, 3) {
			return false
		}
		leaders, spares, members := 0, 0, 0
		for _, m := range st.Members {
			if m.Leader {
				leaders++
			}
			switch m.Role {
			case api.RoleSpare:
				spares++
			case api.RoleMember:
				members++
			}
		}
		return leaders == 1 && spares == min(1, n-3) && members == n-3-spares
	}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestFiveAgentsFormOneCluster(t *testing.T) {
	agents := fiveAgents()
	lc := startCluster(t, agents)
	st, err := waitStatus(ctxFor(t, 60*time.Second), agents[0].URL(), wantFormed(5))
	if err != nil {
		t.Fatal(err)
	}
	// Every peer answers with the same cluster.
	for _, a := range agents {
		got, err := waitStatus(ctxFor(t, 15*time.Second), a.URL(), wantFormed(5))
		if err != nil {
			t.Fatalf("%s: %v", a.Name, err)
		}
		if got.Leader != st.Leader || got.Node != a.Name {
			t.Fatalf("%s answers leader %q node %q; %s answered leader %q", a.Name, got.Leader, got.Node, agents[0].Name, st.Leader)
		}
	}
	roles := map[string]int{}
	for _, m := range st.Members {
		roles[m.Role]++
	}
	if roles[api.RoleVoter] != 3 || roles[api.RoleSpare] != 1 || roles[api.RoleMember] != 1 {
		t.Fatalf("roles = %v, want 3 voters, 1 spare, 1 member (--spares 1)", roles)
	}
	t.Run("leader killed", func(t *testing.T) { leaderKilled(t, lc, st) })
}

// leaderKilled: SIGKILL of the leader, a new leader within 2 s, the dead
// node lost, 3 voters in 3 zones within 10 s, and a restart with the same
// data dir rejoins without an operator.
func leaderKilled(t *testing.T, lc *localCluster, st api.Status) {
	var dead, other *localAgent
	for _, a := range lc.agents {
		if a.Name == st.Leader {
			dead = a
		} else if other == nil {
			other = a
		}
	}
	killed := time.Now()
	if err := dead.signal(syscall.SIGKILL, time.Second); err != nil {
		t.Fatal(err)
	}
	_, err := waitStatus(ctxFor(t, 2*time.Second), other.URL(), func(s api.Status) bool {
		return s.Leader != "" && s.Leader != dead.Name
	})
	if err != nil {
		t.Fatalf("no new leader within 2s of the SIGKILL: %v", err)
	}
	t.Logf("new leader after %v", time.Since(killed).Round(time.Millisecond))
	_, err = waitStatus(ctxFor(t, 10*time.Second-time.Since(killed)), other.URL(), func(s api.Status) bool {
		return formed(s, 4, 3) && memberState(s, dead.Name) == api.StateLost && roleOf(s, dead.Name) == api.RoleMember
	})
	if err != nil {
		t.Fatalf("not healed within 10s: %v", err)
	}
	t.Logf("3 voters in 3 zones again after %v", time.Since(killed).Round(time.Millisecond))

	if err := lc.start(dead, other.IP); err != nil {
		t.Fatal(err)
	}
	_, err = waitStatus(ctxFor(t, 30*time.Second), dead.URL(), func(s api.Status) bool {
		return wantFormed(5)(s) && s.Node == dead.Name && roleOf(s, dead.Name) != api.RoleMember
	})
	if err != nil {
		t.Fatalf("the restarted voter did not rejoin Raft: %v", err)
	}
}

func memberState(st api.Status, name string) string {
	for _, m := range st.Members {
		if m.Name == name {
			return m.State
		}
	}
	return ""
}

func roleOf(st api.Status, name string) string {
	for _, m := range st.Members {
		if m.Name == name {
			return m.Role
		}
	}
	return ""
}

func TestAPIWorkloadsTokensAndBadInput(t *testing.T) {
	agents := fiveAgents()[:3]
	for i, a := range agents {
		a.Name, a.IP, a.Zone = fmt.Sprintf("w%d", i+1), fmt.Sprintf("127.0.0.%d", 31+i), string(rune('a'+i))
	}
	startCluster(t, agents)
	if _, err := waitStatus(ctxFor(t, 60*time.Second), agents[0].URL(), wantFormed(3)); err != nil {
		t.Fatal(err)
	}
	writer := tokenClient(agents[2].URL(), writeToken)
	reader := tokenClient(agents[1].URL(), readToken)
	ctx := ctxFor(t, 60*time.Second)

	spec := `{"id":"counter","command":["/bin/sleep","1000"],"checkpoint":{"mode":"none"},"resources":{"memory_mib":16}}`
	if _, err := writer.Submit(ctx, []byte(spec), "application/json"); err != nil {
		t.Fatalf("submit through a follower: %v", err)
	}
	w := waitWorkload(t, reader, "counter", func(w api.Workload) bool { return w.State == string(fsm.WorkloadRunning) })
	if w.Epoch == 0 || w.Holder == "" {
		t.Fatalf("granted workload has holder %q epoch %d", w.Holder, w.Epoch)
	}

	t.Run("results are fenced by epoch", func(t *testing.T) {
		if _, err := writer.AppendResult(ctx, "counter", w.Epoch, "1"); err != nil {
			t.Fatalf("append with the current epoch: %v", err)
		}
		_, err := writer.AppendResult(ctx, "counter", w.Epoch-1, "2")
		if !errors.Is(err, fsm.ErrStaleEpoch) || err.(*api.RemoteError).Status != http.StatusConflict {
			t.Fatalf("append with a stale epoch: err = %v, want 409 stale_epoch", err)
		}
	})
	t.Run("bad specs are refused and change nothing", func(t *testing.T) {
		bad := map[string]string{
			"not json":      `{"id":`,
			"unknown field": `{"id":"x","command":["a"],"comand":["b"]}`,
			"no command":    `{"id":"y"}`,
			"bad mode":      `{"id":"z","command":["a"],"checkpoint":{"mode":"magic"}}`,
			"duplicate id":  spec,
		}
		for name, body := range bad {
			_, err := writer.Submit(ctx, []byte(body), "application/json")
			var re *api.RemoteError
			if !errors.As(err, &re) || re.Status/100 != 4 || re.Message == "" {
				t.Errorf("%s: err = %v, want a 4xx with a message", name, err)
			}
		}
		ws, err := reader.Workloads(ctx)
		if err != nil || len(ws) != 1 {
			t.Fatalf("workloads after bad input = %d (%v), want only counter", len(ws), err)
		}
	})
	t.Run("tokens", func(t *testing.T) {
		none := tokenClient(agents[0].URL(), "")
		wrong := tokenClient(agents[0].URL(), "nope")
		if _, err := none.Status(ctx); !errors.Is(err, api.ErrUnauthorized) {
			t.Errorf("no token: %v, want unauthorized", err)
		}
		if _, err := wrong.Submit(ctx, []byte(strings.Replace(spec, "counter", "other", 1)), "application/json"); !errors.Is(err, api.ErrUnauthorized) {
			t.Errorf("wrong token: %v, want unauthorized", err)
		}
		if _, err := reader.Submit(ctx, []byte(strings.Replace(spec, "counter", "other", 1)), "application/json"); !errors.Is(err, api.ErrForbidden) {
			t.Errorf("read token on a write: %v, want forbidden", err)
		}
		if _, err := reader.Status(ctx); err != nil {
			t.Errorf("read token on a read: %v", err)
		}
		if ws, _ := reader.Workloads(ctx); len(ws) != 1 {
			t.Errorf("a refused write changed the workloads: %d", len(ws))
		}
	})
	t.Run("remove", func(t *testing.T) {
		if err := writer.Remove(ctx, "counter"); err != nil {
			t.Fatal(err)
		}
		if err := writer.Remove(ctx, "counter"); !errors.Is(err, fsm.ErrNotFound) {
			t.Fatalf("second remove: %v, want not found", err)
		}
	})
}

func waitWorkload(t *testing.T, c *api.Client, id string, ok func(api.Workload) bool) api.Workload {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last api.Workload
	var err error
	for time.Now().Before(deadline) {
		last, err = c.Workload(context.Background(), id)
		if err == nil && ok(last) {
			return last
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("workload %s: last %+v, err %v", id, last, err)
	return last
}
