package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/load"
	"github.com/lifeboat/lifeboat/node/api"
	"github.com/lifeboat/lifeboat/node/cloud/emulate"
	"github.com/lifeboat/lifeboat/node/host"
	"github.com/lifeboat/lifeboat/transfer"
)

type demoFlags struct {
	dir   string
	keep  bool
	stay  bool
	mode  string
	rate  float64
	after time.Duration // load before the notice
	total time.Duration // load in all
}

func newDemoCmd() *cobra.Command {
	df := &demoFlags{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "A local 3-peer cluster, the counter under load through the ingress, a spot interruption, the evacuation, and a report",
		Long: `demo starts three peers on loopback (127.0.0.11-13): two in AWS zones and one in a
GCP zone, each with its own metadata emulator. It runs the counter service (examples/counter,
bin/counter) through every peer's ingress, sends it load from one peer's ingress, then has the
holder's AWS emulator announce a spot interruption. The counter is evacuated to a standby while
the load runs, and the report says where it went, how long clients saw it stall, the latency
percentiles, the errors (there should be none) and whether the count continued.

The counter is checkpointed with CRIU where this host can (root, CRIU >= 4.2), and in app mode
otherwise; the report says which.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDemo(cmd.Context(), cmd.OutOrStdout(), df) },
	}
	f := cmd.Flags()
	f.StringVar(&df.dir, "dir", "", "where the peers keep data and logs (default: a new temporary directory, removed afterwards)")
	f.BoolVar(&df.keep, "keep", false, "keep the data and logs afterwards")
	f.BoolVar(&df.stay, "stay", false, "after the report keep the cluster up until Ctrl-C")
	f.StringVar(&df.mode, "mode", "auto", "checkpoint mode of the counter: auto (criu where it works, else app), criu or app")
	f.Float64Var(&df.rate, "rate", 200, "client requests per second")
	f.DurationVar(&df.after, "notice-after", 3*time.Second, "load before the spot interruption notice")
	f.DurationVar(&df.total, "load", 10*time.Second, "load in all")
	return cmd
}

// demoPeer is one peer of the story: its agent and its cloud.
type demoPeer struct {
	agent *localAgent
	emu   *emulate.Emulator
	cloud string
	zone  string
}

// demoPeers: two AWS zones and one GCP zone.
func demoPeers() []demoPeer {
	return []demoPeer{
		{agent: &localAgent{Name: "demo-1", IP: "127.0.0.11"}, cloud: emulate.AWS, zone: "us-east-1a"},
		{agent: &localAgent{Name: "demo-2", IP: "127.0.0.12"}, cloud: emulate.AWS, zone: "us-east-1b"},
		{agent: &localAgent{Name: "demo-3", IP: "127.0.0.13"}, cloud: emulate.GCP, zone: "us-central1-a"},
	}
}

// The counter's ports: the service on its holder, the ingress on every peer.
const (
	demoServicePort = 18081
	demoListenPort  = 18080
)

func (df *demoFlags) validate() error {
	switch {
	case df.mode != "auto" && df.mode != fsm.ModeCRIU && df.mode != fsm.ModeApp:
		return fmt.Errorf("%w: --mode %q: want auto, criu or app", errUsage, df.mode)
	case !(df.rate > 0) || df.rate > 5000:
		return fmt.Errorf("%w: --rate %v: want 0 < rate <= 5000", errUsage, df.rate)
	case df.after <= 0 || df.total < df.after+3*time.Second:
		return fmt.Errorf("%w: --load %v must last at least 3s past --notice-after %v", errUsage, df.total, df.after)
	}
	return nil
}

func runDemo(ctx context.Context, out io.Writer, df *demoFlags) error {
	if err := df.validate(); err != nil {
		return err
	}
	self, counter, err := demoBinaries()
	if err != nil {
		return err
	}
	mode, why := demoMode(ctx, df.mode)
	dir := df.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "lifeboat-demo-"); err != nil {
			return err
		}
	}
	lc := &localCluster{bin: self, dir: dir}
	peers := demoPeers()
	defer stopDemo(out, lc, peers, df, dir)
	if err := startDemoPeers(lc, peers); err != nil {
		return err
	}
	fmt.Fprintf(out, "3 peers on 127.0.0.11-13: demo-1 aws/us-east-1a, demo-2 aws/us-east-1b, demo-3 gcp/us-central1-a (logs in %s)\n", dir)
	wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	st, err := waitStatus(wctx, peers[0].agent.URL(), func(st api.Status) bool { return formed(st, 3, 3) })
	if err != nil {
		return fmt.Errorf("the demo cluster did not form: %w", err)
	}
	if err := printStatus(out, st); err != nil {
		return err
	}
	rep, err := runStory(wctx, ctx, out, peers, counter, mode, df)
	if err != nil {
		return err
	}
	rep.Mode, rep.ModeWhy = mode, why
	fmt.Fprintln(out)
	if err := rep.write(out); err != nil {
		return err
	}
	if df.stay {
		ops, err := lc.issueClient("demo-operator")
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "\nthe cluster stays up (Ctrl-C stops it); try\n  bin/lifeboat status --addr %s --ca-file %s --cert %s --key %s\n",
			peers[1].agent.URL(), filepath.Join(ops, transfer.CACertFile), filepath.Join(ops, transfer.NodeCertFile), filepath.Join(ops, transfer.NodeKeyFile))
		<-ctx.Done()
	}
	return rep.verdict()
}

// demoBinaries finds this binary (the peers run it) and the counter next
// to it, so a missing `make build` fails before anything starts.
func demoBinaries() (self, counter string, err error) {
	if self, err = os.Executable(); err != nil {
		return "", "", err
	}
	counter = filepath.Join(filepath.Dir(self), "counter")
	if _, err := os.Stat(counter); err != nil {
		return "", "", fmt.Errorf("the demo's service %s is missing (make build builds it): %w", counter, err)
	}
	return self, counter, nil
}

// stopDemo tears the demo down however it ended: the peers, then their
// emulators, then the data unless the user wants it kept. peers holds
// the emulators startDemoPeers set, so it is read only now.
func stopDemo(out io.Writer, lc *localCluster, peers []demoPeer, df *demoFlags, dir string) {
	fmt.Fprintln(out, "stopping the peers …")
	if err := lc.stopAll(); err != nil {
		fmt.Fprintln(out, "warning:", err)
	}
	for _, p := range peers {
		if p.emu != nil {
			p.emu.Close()
		}
	}
	if df.keep || df.dir != "" {
		fmt.Fprintln(out, "data and logs kept in", dir)
	} else {
		os.RemoveAll(dir)
	}
}

// demoMode picks the counter's checkpoint mode, and says why.
func demoMode(ctx context.Context, want string) (mode, why string) {
	if want == fsm.ModeApp {
		return fsm.ModeApp, "asked for with --mode app"
	}
	hc := host.DefaultConfig()
	hc.CRIUPath = host.FindCRIU()
	r := host.Probe(ctx, hc)
	if slices.Contains(r.Modes, fsm.ModeCRIU) {
		return fsm.ModeCRIU, "CRIU " + r.CRIUVersion + " works on this host"
	}
	var failed []string
	for _, c := range r.Checks {
		if !c.OK {
			failed = append(failed, c.Name+": "+c.Detail)
		}
	}
	if want == fsm.ModeCRIU {
		return fsm.ModeCRIU, "asked for with --mode criu, although: " + strings.Join(failed, "; ")
	}
	return fsm.ModeApp, "CRIU does not work here (" + strings.Join(failed, "; ") + "): the counter saves its own state"
}

// startDemoPeers starts each peer's emulator and agent.
func startDemoPeers(lc *localCluster, peers []demoPeer) error {
	for i := range peers {
		p := &peers[i]
		ec := emulate.DefaultConfig(p.cloud)
		ec.Zone, ec.Name = p.zone, p.agent.Name
		ec.InstanceID = ec.InstanceID[:len(ec.InstanceID)-1] + strconv.Itoa(i+1) // one id per instance
		emu, err := emulate.New(ec)
		if err != nil {
			return err
		}
		p.emu = emu
		url, err := emu.Start("127.0.0.1:0")
		if err != nil {
			return err
		}
		p.agent.Env = []string{emulate.EnvLine(p.cloud, url)}
		p.agent.Args = []string{"--bootstrap-expect", "3", "--cloud", p.cloud}
		if err := lc.start(p.agent, "127.0.0.11"); err != nil {
			return err
		}
	}
	return nil
}

// runStory submits the counter, loads it through demo-3's ingress, has
// the holder's emulator announce a spot interruption and gathers the
// report. setup bounds the setup; ctx the whole story.
func runStory(setup, ctx context.Context, out io.Writer, peers []demoPeer, counter, mode string, df *demoFlags) (*demoReport, error) {
	c, err := credentialsFromEnv().client(peers[1].agent.URL())
	if err != nil {
		return nil, err
	}
	before, err := submitCounter(setup, out, c, counter, mode)
	if err != nil {
		return nil, err
	}
	front := "http://" + peers[2].agent.IP + ":" + strconv.Itoa(demoListenPort) + "/"
	warm, err := warmUp(setup, front)
	if err != nil {
		return nil, err
	}
	holder := peerNamed(peers, before.Holder)
	if holder == nil {
		return nil, fmt.Errorf("the counter runs on %q, not a demo peer", before.Holder)
	}
	fmt.Fprintf(out, "the counter runs on %s (epoch %d), standby %s; load: %v/s for %v through demo-3's ingress %s\n",
		before.Holder, before.Epoch, strings.Join(before.Standbys, ","), df.rate, df.total, front)
	in, err := interruptUnderLoad(ctx, out, c, holder, before, front, df)
	if err != nil {
		return nil, err
	}
	rep := &demoReport{From: before.Holder, FromWhere: holder.where(), Before: before.Epoch, Load: in.load,
		NoticeAt: in.noticeAt.Sub(in.load.Start), Warm: warm}
	if after := in.after; after != nil {
		rep.To, rep.After, rep.Moved = after.Holder, after.Epoch, in.ranAt.Sub(in.noticeAt)
		if p := peerNamed(peers, after.Holder); p != nil {
			rep.ToWhere = p.where()
		}
	}
	if ms, err := c.Migrations(setup); err == nil {
		rep.Migration = lastMigration(ms, before.Holder)
	}
	rep.Count, rep.CountErr = counterValue(setup, front)
	return rep, nil
}

// submitCounter submits the counter and returns it once it runs with a
// checkpoint on a standby: only then can an interruption show a move
// rather than a cold restart.
func submitCounter(setup context.Context, out io.Writer, c *api.Client, counter, mode string) (api.Workload, error) {
	spec := fsm.WorkloadSpec{ID: "counter", Command: []string{counter, "--port", strconv.Itoa(demoServicePort)},
		Checkpoint: fsm.CheckpointPolicy{Mode: mode, Interval: fsm.Duration(2 * time.Second)}, Priority: fsm.PriorityCritical,
		Resources: fsm.Resources{MemoryMiB: 64},
		Service:   &fsm.Service{Port: demoServicePort, Listen: demoListenPort, Protocol: fsm.ProtocolHTTP, SLO: fsm.Duration(3 * time.Second)},
		Placement: fsm.Constraints{Prefer: []string{"demo-1"}}, Standbys: 1}
	body, _ := json.Marshal(spec)
	if _, err := c.Submit(setup, body, "application/json"); err != nil {
		return api.Workload{}, fmt.Errorf("submitting the counter: %w", err)
	}
	fmt.Fprintf(out, "\nsubmitted the counter (checkpoint mode %s, every 2s); waiting for it to run with a checkpoint on its standby …\n", mode)
	for {
		before, err := c.Workload(setup, "counter")
		if err == nil && before.State == string(fsm.WorkloadRunning) && before.Checkpoint != nil && len(before.Standbys) > 0 {
			return before, nil
		}
		if setup.Err() != nil {
			// Its state, not the whole workload: a spec's env is not for logs.
			return api.Workload{}, fmt.Errorf("the counter did not start: state %q on %q, message %q, %v",
				before.State, before.Holder, before.Message, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// interruption is what the story measured under load: the load, when the
// notice came, and when and where the counter ran again (after nil: not
// before ctx ended).
type interruption struct {
	load     *load.Result
	noticeAt time.Time
	after    *api.Workload
	ranAt    time.Time
}

// interruptUnderLoad runs the load for df.total and announces the
// holder's spot interruption df.after into it, so the report sees the
// move as clients saw it; it returns when the load has finished.
func interruptUnderLoad(ctx context.Context, out io.Writer, c *api.Client, holder *demoPeer, before api.Workload, front string, df *demoFlags) (*interruption, error) {
	lc := load.DefaultConfig()
	lc.Target, lc.Rate, lc.Duration, lc.Timeout = front, df.rate, df.total, 10*time.Second
	type loaded struct {
		res *load.Result
		err error
	}
	done := make(chan loaded, 1)
	go func() {
		res, err := load.Run(ctx, lc)
		done <- loaded{res, err}
	}()
	select {
	case <-time.After(df.after):
	case <-ctx.Done():
	}
	noticeAt := time.Now()
	if err := holder.emu.Notice(emulate.KindPreempt, noticeAt.Add(2*time.Minute)); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "AWS spot interruption notice on %s (2 minutes' warning) …\n", holder.agent.Name)
	after, ranAt := waitMoved(ctx, c, before)
	l := <-done
	if l.err != nil {
		return nil, fmt.Errorf("the load: %w", l.err)
	}
	return &interruption{load: l.res, noticeAt: noticeAt, after: after, ranAt: ranAt}, nil
}

// warmUp waits until the ingress answers and returns how many counts the
// wait took.
func warmUp(ctx context.Context, url string) (int, error) {
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return 1, nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("the ingress %s never answered: %v", url, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitMoved waits until the counter runs elsewhere under a newer epoch;
// nil if it never did before ctx ended (the report says so).
func waitMoved(ctx context.Context, c *api.Client, before api.Workload) (*api.Workload, time.Time) {
	for ctx.Err() == nil {
		w, err := c.Workload(ctx, "counter")
		if err == nil && w.Holder != before.Holder && w.Epoch > before.Epoch && w.State == string(fsm.WorkloadRunning) {
			return &w, time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, time.Time{}
}

// counterValue reads the count without counting (GET /value).
func counterValue(ctx context.Context, front string) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, front+"value", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /value: %s", resp.Status)
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func peerNamed(peers []demoPeer, name string) *demoPeer {
	for i := range peers {
		if peers[i].agent.Name == name {
			return &peers[i]
		}
	}
	return nil
}

func (p *demoPeer) where() string { return p.cloud + "/" + p.zone }

// lastMigration is the newest migration off from.
func lastMigration(ms []fsm.Migration, from string) *fsm.Migration {
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].From == from {
			return &ms[i]
		}
	}
	return nil
}

var errDemoFailed = errors.New("demo: the story did not go as it must")

// formed reports whether st shows n alive members, one leader and the
// wanted number of voters, each voter in its own zone.
func formed(st api.Status, n, voters int) bool {
	if st.Leader == "" {
		return false
	}
	alive, v := 0, 0
	zones := map[string]bool{}
	for _, m := range st.Members {
		if m.State == api.StateAlive {
			alive++
		}
		if m.Role == api.RoleVoter {
			v++
			zones[m.Zone] = true
		}
	}
	return alive == n && v == voters && len(zones) == voters
}
