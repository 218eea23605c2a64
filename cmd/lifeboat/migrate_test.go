package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/internal/netns"
	"github.com/lifeboat/lifeboat/node/api"
)

// formedOnSwitch is hostsOnSwitch for three names, once they formed one
// cluster.
func formedOnSwitch(t *testing.T, names ...string) []*localAgent {
	t.Helper()
	_, agents := hostsOnSwitch(t, names...)
	if _, err := waitStatus(ctxFor(t, 45*time.Second), agents[0].URL(), wantFormed(len(names))); err != nil {
		t.Fatal(err)
	}
	return agents
}

// hostsOnSwitch starts one agent per name, each in its own network
// namespace on one switch (10.232.0.1, .2, … in zones a, b, c …), the test
// itself on 10.232.0.254. Everything goes when the test ends.
func hostsOnSwitch(t *testing.T, names ...string) (*localCluster, []*localAgent) {
	t.Helper()
	lc, agents, _ := switchHosts(t, "mig", "10.232.0", names...)
	return lc, agents
}

// switchHosts is hostsOnSwitch for any test or benchmark, with the
// namespaces' label and the /24 (its first three octets, say "10.232.0")
// of its own. It also returns what removes everything (idempotent; tb's
// cleanup calls it too), for a benchmark that builds a cluster per
// iteration.
func switchHosts(tb testing.TB, label, net24 string, names ...string) (*localCluster, []*localAgent, func()) {
	tb.Helper()
	agents, down := switchAgents(tb, label, net24, names...)
	lc := &localCluster{bin: testBin, dir: tb.TempDir()}
	down.add(func() {
		if tb.Failed() {
			massDumpLogs(tb, lc)
		}
		lc.stopAll()
	})
	for _, a := range agents {
		if err := lc.start(a, agents[0].IP+":7946"); err != nil {
			tb.Fatal(err)
		}
	}
	return lc, agents, down.run
}

// teardown runs what was added to it, last first, once (also at tb's
// cleanup).
type teardown struct {
	mu    sync.Mutex
	steps []func()
	done  bool
}

func (d *teardown) add(f func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.steps = append(d.steps, f)
}

func (d *teardown) run() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := len(d.steps) - 1; i >= 0 && !d.done; i-- {
		d.steps[i]()
	}
	d.done = true
}

// switchAgents makes the switch and one namespace per name (IPs .1, .2, …
// of net24, zones a, b, c, …) and the agents that would run in them, not
// started. Its teardown (run at tb's cleanup) runs what is added to it
// later first (stopping the agents, say), then kills whatever is left in
// the namespaces and removes them and the switch.
func switchAgents(tb testing.TB, label, net24 string, names ...string) ([]*localAgent, *teardown) {
	if _, err := netns.CleanupStale(netns.Prefix + label); err != nil {
		tb.Logf("stale namespaces: %v", err)
	}
	down := &teardown{}
	tb.Cleanup(down.run)
	sw, err := netns.NewSwitch(label+"sw", net24+".254", 24)
	if err != nil {
		tb.Fatal(err)
	}
	down.add(func() { sw.Close() })
	var agents []*localAgent
	for i, name := range names {
		ns, err := netns.New(label + name)
		if err != nil {
			tb.Fatal(err)
		}
		down.add(func() { killNS(ns); ns.Close() })
		ip := fmt.Sprintf("%s.%d", net24, i+1)
		if err := sw.Plug(ns, ip); err != nil {
			tb.Fatal(err)
		}
		agents = append(agents, &localAgent{Name: name, IP: ip, Zone: string(rune('a' + i)),
			Args: []string{"--bootstrap-expect", "3"},
			Wrap: func(bin string, args ...string) *exec.Cmd { return ns.Command(bin, args...) }})
	}
	return agents, down
}

// TestMigrateBetweenHostsInNamespaces: three agents, each in its own
// network namespace; the counter (criu mode, 64 MiB) runs on one with a
// standby elsewhere. A periodic checkpoint reaches the standby over QUIC
// and is committed listing it; `lifeboat workload migrate` then moves the
// counter to another host: the count continues, the epoch grows, the old
// holder no longer serves it, and the move is recorded with its phases.
func TestMigrateBetweenHostsInNamespaces(t *testing.T) {
	needCRIU(t)
	counter := buildCounter(t)
	agents := formedOnSwitch(t, "h1", "h2", "h3")
	url := agents[0].URL()
	spec := fmt.Sprintf("id: counter\ncommand: [%s, --port, \"18082\", --ballast-mib, \"64\"]\n"+
		"checkpoint: {mode: criu, interval: 1h}\nservice: {port: 18082}\nresources: {memory_mib: 128}\n"+
		"placement: {prefer: [h1]}\n", counter)
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(testBin, append(args, "--addr", url)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("lifeboat %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	cli("workload", "submit", writeFile(t, "counter.yaml", spec))
	c := envClient(url)
	w := waitWorkload(t, c, "counter", func(w api.Workload) bool { return w.State == "running" && len(w.Standbys) == 1 })
	if w.Holder != "h1" {
		t.Fatalf("holder %s, want h1 (preferred)", w.Holder)
	}
	standby := w.Standbys[0]
	for want := 1; want <= 3; want++ {
		if got := countAt(t, "10.232.0.1:18082"); got != want {
			t.Fatalf("GET / = %d, want %d", got, want)
		}
	}

	// A periodic checkpoint goes to the standby before it commits.
	cli("workload", "checkpoint", "counter")
	w = waitWorkload(t, c, "counter", func(w api.Workload) bool { return w.Checkpoint != nil })
	if !slices.Contains(w.Checkpoint.Standbys, standby) || !slices.Contains(w.Checkpoint.Standbys, "h1") {
		t.Fatalf("checkpoint #%d committed with copies on %v, want h1 and the standby %s", w.Checkpoint.Seq, w.Checkpoint.Standbys, standby)
	}
	countAt(t, "10.232.0.1:18082") // 4

	// Move it to the standby: only the delta travels.
	epoch := w.Epoch
	out := cli("workload", "migrate", "counter", "--to", standby)
	t.Log(strings.TrimSpace(out))
	if !strings.Contains(out, "moved to "+standby) {
		t.Fatalf("migrate output: %s", out)
	}
	w = waitWorkload(t, c, "counter", func(w api.Workload) bool { return w.Holder == standby && w.State == "running" })
	if w.Epoch <= epoch {
		t.Fatalf("epoch %d after the move, want more than %d", w.Epoch, epoch)
	}
	ip := map[string]string{"h1": "10.232.0.1", "h2": "10.232.0.2", "h3": "10.232.0.3"}
	if got := countAt(t, ip[standby]+":18082"); got != 5 {
		t.Fatalf("after the move GET / = %d on %s, want 5: the count continues", got, standby)
	}
	if resp, err := (&http.Client{Timeout: time.Second}).Get("http://10.232.0.1:18082/value"); err == nil {
		resp.Body.Close()
		t.Fatal("the old holder still serves the counter")
	}
	ms, err := c.Migrations(context.Background())
	if err != nil || len(ms) == 0 {
		t.Fatalf("migrations: %v %v", ms, err)
	}
	last := ms[len(ms)-1]
	if last.From != "h1" || last.To != standby || last.Phase != "done" || len(last.Phases) < 4 {
		t.Fatalf("migration record %+v", last)
	}
	cli("workload", "remove", "counter")
}

// TestLazyMigrateBetweenHostsInNamespaces: the counter (criu mode, 64 MiB,
// lazy pages) moves between agents in network namespaces with a lazy
// final checkpoint: a few hundred KiB travel before it runs again on the
// standby, the count continues, its memory arrives whole (the ballast's
// SHA-256 is the same), the old holder's frozen process ends, and the new
// holder takes a complete checkpoint when asked once the memory is all in
// (and refuses one before).
func TestLazyMigrateBetweenHostsInNamespaces(t *testing.T) {
	needCRIU(t)
	counter := buildCounter(t)
	agents := formedOnSwitch(t, "l1", "l2", "l3")
	spec := fmt.Sprintf("id: counter\ncommand: [%s, --port, \"18084\", --ballast-mib, \"64\"]\n"+
		"checkpoint: {mode: criu, interval: 1h, lazy_pages: true}\nservice: {port: 18084}\nresources: {memory_mib: 128}\n"+
		"placement: {prefer: [l1]}\n", counter)
	c := envClient(agents[0].URL())
	ctx := ctxFor(t, 2*time.Minute)
	if _, err := c.Submit(ctx, []byte(spec), "application/yaml"); err != nil {
		t.Fatal(err)
	}
	w := waitWorkload(t, c, "counter", func(w api.Workload) bool {
		return w.State == "running" && w.Holder == "l1" && len(w.Standbys) == 1
	})
	ip := map[string]string{"l1": "10.232.0.1", "l2": "10.232.0.2", "l3": "10.232.0.3"}
	to := w.Standbys[0]
	countAt(t, ip["l1"]+":18084")
	countAt(t, ip["l1"]+":18084")
	sum := ballastSum(t, ip["l1"]+":18084")
	sent := metricValue(t, agents[0].URL()+"/metrics", "lifeboat_transfer_sent_bytes_total")
	res, err := c.Migrate(ctx, "counter", to)
	if err != nil {
		t.Fatal(err)
	}
	if shipped := metricValue(t, agents[0].URL()+"/metrics", "lifeboat_transfer_sent_bytes_total") - sent; shipped > 1<<20 {
		t.Fatalf("the lazy move shipped %.0f bytes before the restore: the memory should have stayed behind", shipped)
	}
	if got := countAt(t, ip[to]+":18084"); got != 3 {
		t.Fatalf("after the lazy move GET / = %d on %s, want 3: the count continues", got, to)
	}
	w = waitWorkload(t, c, "counter", func(w api.Workload) bool { return w.Holder == to && w.Epoch == res.Epoch })
	if w.Checkpoint == nil || w.Checkpoint.LazyFrom != "l1" || w.Checkpoint.Seq != res.Seq {
		t.Fatalf("after the move the newest checkpoint is %+v, want the lazy #%d from l1", w.Checkpoint, res.Seq)
	}
	// A checkpoint is refused while the memory is arriving and complete
	// once it is all in; none is taken by itself before the interval.
	ck := checkpointOnceIn(t, ctx, c, "counter")
	w = waitWorkload(t, c, "counter", func(w api.Workload) bool { return w.Checkpoint != nil && w.Checkpoint.Seq >= ck.Seq })
	if w.Checkpoint.Seq != ck.Seq || ck.Seq != res.Seq+1 || w.Checkpoint.LazyFrom != "" || w.Checkpoint.Epoch != res.Epoch {
		t.Fatalf("the checkpoint after the lazy move is %+v (asked: #%d), want the complete #%d under epoch %d",
			w.Checkpoint, ck.Seq, res.Seq+1, res.Epoch)
	}
	if got := ballastSum(t, ip[to]+":18084"); got != sum {
		t.Fatalf("the ballast's SHA-256 is %s after the lazy move, %s before: memory was lost", got, sum)
	}
	if resp, err := (&http.Client{Timeout: time.Second}).Get("http://" + ip["l1"] + ":18084/value"); err == nil {
		resp.Body.Close()
		t.Fatal("the old holder still serves the counter")
	}
	if n := countProcs(t, counter); n != 1 {
		t.Fatalf("%d counter processes run after the lazy move, want 1: the old holder's frozen one must end", n)
	}
	// The target dialed the page relay when it accepted the offer,
	// restored on receipt and only resumed at the grant.
	for _, a := range agents {
		if a.Name != to {
			continue
		}
		b, err := os.ReadFile(filepath.Join(a.dir, "agent.log"))
		if err != nil || !strings.Contains(string(b), "resumed the lazy restore prepared before the grant") {
			t.Fatalf("%s did not resume a restore prepared before the grant (%v): it restored after it", to, err)
		}
		if !strings.Contains(string(b), "the lazy restore takes the page relay dialed at the offer") {
			t.Fatalf("%s's restore dialed the page relay itself, not at the offer", to)
		}
	}
}

// checkpointOnceIn asks for a checkpoint of id until its holder takes it:
// it refuses while a lazy restore's memory is still arriving.
func checkpointOnceIn(t *testing.T, ctx context.Context, c *api.Client, id string) api.ActionResult {
	t.Helper()
	for {
		res, err := c.Checkpoint(ctx, id)
		switch {
		case err == nil:
			return res
		case !strings.Contains(err.Error(), "still arriving"):
			t.Fatalf("checkpoint of %s: %v", id, err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("checkpoint of %s: the memory never all arrived: %v", id, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ballastSum is the counter's ballast SHA-256 at hostport.
func ballastSum(t *testing.T, hostport string) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get("http://" + hostport + "/ballast/sum")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("ballast/sum at %s: %d %q %v", hostport, resp.StatusCode, b, err)
	}
	return strings.TrimSpace(string(b))
}

// countProcs counts the running processes whose executable is bin.
func countProcs(t *testing.T, bin string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if exe, err := os.Readlink("/proc/" + e.Name() + "/exe"); err == nil && exe == bin {
			n++
		}
	}
	return n
}

// TestDeltaCheckpointShipsOnlyWhatChanged: the counter holds 512 MiB
// (criu mode) with a standby on another host. The first checkpoint ships
// it all; after the workload rewrites 10 % of its memory, the second ships
// at most 15 % of the checkpoint's bytes: the standby already holds the
// rest from the first.
func TestDeltaCheckpointShipsOnlyWhatChanged(t *testing.T) {
	needCRIU(t)
	counter := buildCounter(t)
	agents := formedOnSwitch(t, "d1", "d2", "d3")
	url := agents[0].URL()
	spec := fmt.Sprintf("id: big\ncommand: [%s, --port, \"18083\", --ballast-mib, \"512\"]\n"+
		"checkpoint: {mode: criu, interval: 1h}\nservice: {port: 18083}\nresources: {memory_mib: 700}\n"+
		"placement: {prefer: [d1]}\n", counter)
	c := envClient(url)
	if _, err := c.Submit(context.Background(), []byte(spec), "application/yaml"); err != nil {
		t.Fatal(err)
	}
	waitWorkload(t, c, "big", func(w api.Workload) bool { return w.State == "running" && w.Holder == "d1" && len(w.Standbys) == 1 })
	countAt(t, "10.232.0.1:18083")
	sent := func() float64 {
		t.Helper()
		return metricValue(t, agents[0].URL()+"/metrics", "lifeboat_transfer_sent_bytes_total")
	}
	ctx := ctxFor(t, 2*time.Minute)
	first, err := c.Checkpoint(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	afterFirst := sent()
	if afterFirst < 0.9*float64(first.Bytes) {
		t.Fatalf("the first checkpoint (%d bytes) shipped only %.0f bytes", first.Bytes, afterFirst)
	}
	resp, err := http.Post("http://10.232.0.1:18083/ballast/touch?percent=10", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	second, err := c.Checkpoint(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	delta := sent() - afterFirst
	share := delta / float64(second.Bytes)
	t.Logf("checkpoint #%d: %d bytes, all shipped; #%d after 10 %% of memory changed: %d bytes, %.0f shipped (%.1f %%)",
		first.Seq, first.Bytes, second.Seq, second.Bytes, delta, 100*share)
	if share > 0.15 {
		t.Fatalf("the second checkpoint shipped %.1f %% of its bytes, want at most 15 %%", 100*share)
	}
	if err := c.Remove(context.Background(), "big"); err != nil {
		t.Fatal(err)
	}
}

// metricValue reads one unlabelled Prometheus counter or gauge.
func metricValue(tb testing.TB, url, name string) float64 {
	tb.Helper()
	c := envClient(strings.TrimSuffix(url, "/metrics"))
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				tb.Fatal(err)
			}
			return v
		}
	}
	tb.Fatalf("%s has no %s", url, name)
	return 0
}
