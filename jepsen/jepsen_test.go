package jepsen

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/jepsen/checker"
	"github.com/lifeboat/lifeboat/jepsen/cluster"
	"github.com/lifeboat/lifeboat/jepsen/history"
	"github.com/lifeboat/lifeboat/jepsen/nemesis"
	"github.com/lifeboat/lifeboat/jepsen/report"
	"github.com/lifeboat/lifeboat/jepsen/traffic"
)

var (
	full    = flag.Bool("jepsen.full", false, "run the full suite (make jepsen) instead of the short one")
	outDir  = flag.String("jepsen.out", "", "where the summary and failing runs' histories go (default: a temporary dir)")
	seedArg = flag.Uint64("jepsen.seed", 0, "seed of the faults and clients (0: from the clock); printed for a rerun")
)

// scenario is one run: which faults, for how long, with fencing on or off.
type scenario struct {
	name     string
	nemeses  func(workloads []string) []nemesis.Nemesis
	mixed    bool
	duration time.Duration
	hold     [2]time.Duration // min, max time a fault lasts
	gap      [2]time.Duration // min, max quiet time between faults
	// unfenced runs the agents with --unsafe-disable-fencing: the
	// negative control, which the checkers must catch.
	unfenced bool
}

const leaseTTL = 3 * time.Second

func scenarios(long bool) []scenario {
	everything := func(ws []string) []nemesis.Nemesis { return nemesis.All(ws) }
	mixed := scenario{name: "mixed", nemeses: everything, mixed: true, duration: 60 * time.Second,
		hold: [2]time.Duration{3 * time.Second, 10 * time.Second}, gap: [2]time.Duration{2 * time.Second, 5 * time.Second}}
	negative := scenario{name: "negative-control-unfenced",
		nemeses:  func(ws []string) []nemesis.Nemesis { return []nemesis.Nemesis{nemesis.IsolateHolder(ws[0])} },
		duration: 30 * time.Second, hold: [2]time.Duration{14 * time.Second, 16 * time.Second},
		gap: [2]time.Duration{time.Second, 2 * time.Second}, unfenced: true}
	if !long {
		mixed.duration = 45 * time.Second
		return []scenario{mixed, negative}
	}
	var out []scenario
	for _, n := range nemesis.All([]string{"w1", "w2"}) {
		kind := n.Kind()
		out = append(out, scenario{name: kind, duration: 45 * time.Second,
			hold: [2]time.Duration{3 * time.Second, 10 * time.Second}, gap: [2]time.Duration{2 * time.Second, 4 * time.Second},
			nemeses: func(ws []string) []nemesis.Nemesis {
				return slices.DeleteFunc(nemesis.All(ws), func(m nemesis.Nemesis) bool { return m.Kind() != kind })
			}})
	}
	// Clock steps overlapping the faults that isolate a holder or freeze
	// an agent: where a lease that trusted the wall clock would break.
	clocks := scenario{name: "clock-jump+partitions", mixed: true, duration: 60 * time.Second,
		hold: [2]time.Duration{4 * time.Second, 12 * time.Second}, gap: [2]time.Duration{time.Second, 3 * time.Second},
		nemeses: func(ws []string) []nemesis.Nemesis {
			return []nemesis.Nemesis{nemesis.ClockJump{Min: 10 * time.Second, Max: 60 * time.Second, Workloads: ws},
				nemesis.IsolateHolder(ws...), nemesis.IsolateLeader{}, nemesis.Pause{Hold: nemesis.DefaultPauseHold}}
		}}
	mixed.duration = 120 * time.Second
	return append(out, clocks, mixed, negative)
}

// TestJepsen runs the suite and checks every run's history: with fencing
// on, no checker may find a violation; with fencing off (the negative
// control), they must.
func TestJepsen(t *testing.T) {
	cluster.Require(t)
	bin, err := filepath.Abs("../bin/lifeboat")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s: %v (make build first; make test and make jepsen do)", bin, err)
	}
	counter := filepath.Join(t.TempDir(), "counter")
	if out, err := exec.Command("go", "build", "-o", counter, "../examples/counter").CombinedOutput(); err != nil {
		t.Fatalf("building the counter: %v\n%s", err, out)
	}
	out := *outDir
	if out == "" {
		out = t.TempDir()
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	seed := *seedArg
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -args -jepsen.seed=%d), output in %s", seed, seed, out)

	fenced, control := &report.Summary{}, &report.Summary{}
	for i, sc := range scenarios(*full) {
		t.Run(sc.name, func(t *testing.T) {
			sum := fenced
			if sc.unfenced {
				sum = control
			}
			vs, saved := runScenario(t, sc, bin, counter, out, seed+uint64(i), sum)
			switch {
			case sc.unfenced && checker.Passed(vs):
				t.Errorf("fencing off, yet no checker found a violation: the checkers do not catch what fencing prevents")
			case sc.unfenced:
				t.Logf("negative control caught, as it must be (history in %s)", saved)
			case !checker.Passed(vs):
				t.Errorf("violations with fencing on: history, verdicts and visualisation in %s", saved)
			}
		})
	}
	var b strings.Builder
	b.WriteString("## Fencing on: every check must pass\n\n")
	if err := fenced.Write(&b); err != nil {
		t.Fatal(err)
	}
	b.WriteString("\n## Negative control, fencing off: the checks must find violations\n\n")
	if err := control.Write(&b); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + b.String())
	if err := os.WriteFile(filepath.Join(out, "summary.md"), []byte(b.String()), 0o644); err != nil {
		t.Error(err)
	}
}

// runScenario runs one scenario on a fresh cluster and returns the
// verdicts, and where a failing run's record was saved.
func runScenario(t *testing.T, sc scenario, bin, counter, out string, seed uint64, sum *report.Summary) ([]checker.Verdict, string) {
	ctx, cancel := context.WithTimeout(context.Background(), sc.duration+5*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(tLog{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg := cluster.DefaultConfig()
	cfg.Bin, cfg.Dir, cfg.Logger = bin, t.TempDir(), log
	cfg.AgentArgs = []string{"--lease-ttl", leaseTTL.String(), "--log-level", "info", "--unsafe-crash-points", "--unsafe-clock-control"}
	if sc.unfenced {
		cfg.AgentArgs = append(cfg.AgentArgs, "--unsafe-disable-fencing")
	}
	c, err := cluster.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("starting the cluster: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			cluster.DumpOnFailure(t, c)
		}
		if err := c.Close(); err != nil {
			t.Errorf("cleaning up: %v", err)
		}
	})

	waitSettled(t, ctx, c)
	workloads := []string{"w1", "w2"}
	ports := map[string]int{"w1": 19101, "w2": 19102}
	listen := map[string]int{"w1": 19201, "w2": 19202} // every host's ingress
	submitCounters(t, ctx, c, counter, ports, listen)

	begin := time.Now()
	hist := history.New(begin)
	var hosts []traffic.Host
	for _, h := range c.Hosts {
		hosts = append(hosts, traffic.Host{Name: h.Name, IP: h.IP})
	}
	tcfg := traffic.DefaultConfig()
	tcfg.Hosts, tcfg.Ports, tcfg.Listen, tcfg.Seed, tcfg.TLS = hosts, ports, listen, seed, c.APITLS()
	tr, err := traffic.Start(ctx, tcfg, hist)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Stop()

	sched := nemesis.Schedule{Nemeses: sc.nemeses(workloads), Mixed: sc.mixed,
		MinHold: sc.hold[0], MaxHold: sc.hold[1], MinGap: sc.gap[0], MaxGap: sc.gap[1], Logger: log}
	if err := nemesis.Run(ctx, c, sched, rand.New(rand.NewPCG(seed, 7)), hist, begin.Add(sc.duration)); err != nil {
		t.Errorf("healing: %v", err)
	}
	if ops, _ := hist.Snapshot(); !sc.unfenced && !fenceExercised(ops, false).Pass {
		// The random faults never moved a workload: isolate a holder once,
		// so that the run tests the fence at least once.
		log.Info("no workload moved yet: isolating a holder once")
		once := nemesis.Schedule{Nemeses: []nemesis.Nemesis{nemesis.IsolateHolder(workloads...)},
			MinHold: 10 * time.Second, MaxHold: 10 * time.Second, MinGap: 0, MaxGap: 0, Logger: log}
		if err := nemesis.Run(ctx, c, once, rand.New(rand.NewPCG(seed, 8)), hist, time.Now().Add(12*time.Second)); err != nil {
			t.Errorf("healing: %v", err)
		}
		// The stale writer tries the old epoch once the probes see the
		// new one served; the new holder may take a few seconds to serve
		// (or be the next one isolated). Wait for it, bounded.
		for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
			if ops, _ := hist.Snapshot(); fenceExercised(ops, false).Pass {
				break
			}
		}
	}
	healed := hist.Since(time.Now())
	rec := observeRecovery(ctx, c, workloads, hist, healed)
	time.Sleep(2 * time.Second) // traffic on the healed cluster
	tr.Stop()
	if err := tr.Final(ctx); err != nil {
		t.Errorf("final read: %v", err)
	}

	ops, faults := hist.Snapshot()
	vs := checker.All(ops, faults, rec, workloads)
	vs = append(vs, fenceExercised(ops, sc.unfenced))
	sum.Add(ops, faults, vs, time.Since(begin))
	for _, v := range vs {
		t.Logf("%-16s pass=%v %v", v.Name, v.Pass, v.Figures)
		for _, n := range v.Notes {
			t.Logf("    note: %s", n)
		}
		for _, p := range v.Problems {
			t.Logf("    %s", p)
		}
	}
	saved := ""
	if !checker.Passed(vs) {
		if saved, err = report.SaveFailure(out, sc.name, hist, vs); err != nil {
			t.Errorf("saving the failing run: %v", err)
		}
	}
	return vs, saved
}

// fenceExercised passes when stale appends were tried and refused: proof
// that the runs moved workloads and the fence had something to refuse.
// With fencing off it is not required.
func fenceExercised(ops []history.Op, unfenced bool) checker.Verdict {
	tried, refused := 0, 0
	for _, op := range ops {
		if op.Kind == history.KindStale {
			tried++
			if op.Status == 409 {
				refused++
			}
		}
	}
	v := checker.Verdict{Name: "fence-exercised", Pass: refused > 0 || unfenced,
		Figures: map[string]any{"stale_attempts": tried, "rejected_409": refused}}
	if !v.Pass {
		v.Problems = []string{"no stale append was refused: no workload moved, so the fence was never tested"}
	}
	return v
}

// workloadRunning is the state GET /v1/workloads/ID reports for a
// workload its holder runs.
const workloadRunning = "running"

// counterSpec is the workload spec (POST /v1/workloads, JSON) of counter
// id in results mode: app checkpoints every 2 s, a service on port
// reached through listen, high priority.
func counterSpec(id, counter string, port, listen int) ([]byte, error) {
	type checkpoint struct {
		Mode     string `json:"mode"`
		Interval string `json:"interval"`
	}
	type service struct {
		Port   int    `json:"port"`
		Listen int    `json:"listen,omitempty"`
		SLO    string `json:"slo"`
	}
	type resources struct {
		MemoryMiB int `json:"memory_mib"`
	}
	return json.Marshal(struct {
		ID         string     `json:"id"`
		Command    []string   `json:"command"`
		Checkpoint checkpoint `json:"checkpoint"`
		Service    service    `json:"service"`
		Resources  resources  `json:"resources"`
		Priority   string     `json:"priority"`
	}{
		ID: id, Command: []string{counter, "--port", fmt.Sprint(port), "--results"},
		Checkpoint: checkpoint{Mode: "app", Interval: "2s"},
		Service:    service{Port: port, Listen: listen, SLO: "3s"},
		Resources:  resources{MemoryMiB: 16}, Priority: "high",
	})
}

// submitCounters submits the counters in results mode (app checkpoints
// every 2 s, one standby) and waits until each runs.
func submitCounters(t *testing.T, ctx context.Context, c *cluster.Cluster, counter string, ports, listen map[string]int) {
	t.Helper()
	cl := c.Hosts[0].Client()
	for id, port := range ports {
		b, err := counterSpec(id, counter, port, listen[id])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Submit(ctx, b, "application/json"); err != nil {
			t.Fatalf("submitting %s: %v", id, err)
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	for id := range ports {
		for {
			w, err := cl.Workload(ctx, id)
			if err == nil && w.State == workloadRunning {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s does not run: %+v %v", id, w, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// waitSettled waits until autopilot has built the control plane the runs
// assume: three voters and the rest spares, as every host reports. Right
// after forming, a cluster has fewer voters, and isolating one of them
// stops it — which tests the bootstrap, not the fabric.
func waitSettled(t *testing.T, ctx context.Context, c *cluster.Cluster) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := c.Hosts[0].Status(ctx, 2*time.Second)
		voters, spares := 0, 0
		for _, m := range st.Members {
			switch m.Role {
			case "voter":
				voters++
			case "spare":
				spares++
			}
		}
		if err == nil && voters == 3 && voters+spares == len(c.Hosts) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the control plane did not settle to 3 voters and %d spares: %s %v", len(c.Hosts)-3, cluster.Summary(st), err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// recoveryBound is how long after the last heal every workload must run
// again: a lost holder's lease (TTL), its re-grant delay (TTL·ρ +
// lock-delay), a restore, and slack for a 2-core machine.
const recoveryBound = 45 * time.Second

// observeRecovery watches, after the heal, for each workload to run again
// and for every host to name the same leader.
func observeRecovery(ctx context.Context, c *cluster.Cluster, workloads []string, hist *history.History, healed time.Duration) checker.RecoveryObservation {
	rec := checker.RecoveryObservation{HealedAt: healed, WorkloadsRunningAt: map[string]time.Duration{},
		Leaders: map[string]string{}, Bound: recoveryBound}
	deadline := time.Now().Add(recoveryBound + 10*time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		for _, id := range workloads {
			if _, ok := rec.WorkloadsRunningAt[id]; ok {
				continue
			}
			for _, h := range c.Hosts {
				rctx, cancel := context.WithTimeout(ctx, time.Second)
				w, err := h.Client().Workload(rctx, id)
				cancel()
				if err == nil && w.State == workloadRunning {
					rec.WorkloadsRunningAt[id] = hist.Since(time.Now())
					break
				}
			}
		}
		if len(rec.WorkloadsRunningAt) == len(workloads) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	// The leader gets its own look even when a workload used up the wait,
	// so that the report does not blame a leader nobody asked about.
	if late := time.Now().Add(10 * time.Second); deadline.Before(late) {
		deadline = late
	}
	for time.Now().Before(deadline) && ctx.Err() == nil {
		leaders := map[string]string{}
		for _, h := range c.Hosts {
			if st, err := h.Status(ctx, time.Second); err == nil {
				leaders[h.Name] = st.Leader
			}
		}
		rec.Leaders = leaders
		if agree(leaders, len(c.Hosts)) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	return rec
}

func agree(leaders map[string]string, n int) bool {
	if len(leaders) != n {
		return false
	}
	first := ""
	for _, l := range leaders {
		if l == "" || (first != "" && l != first) {
			return false
		}
		first = l
	}
	return true
}

// tLog sends the harness's log lines to t.Log.
type tLog struct{ t *testing.T }

func (w tLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
