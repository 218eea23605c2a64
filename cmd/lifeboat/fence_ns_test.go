package main

import (
	"context"
	"errors"
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
	"syscall"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/internal/netns"
	"github.com/lifeboat/lifeboat/node/api"
)

// The tests in this file run three real agents, each in its own network
// namespace on the switch "fnsw" (10.234.0.1-3, the test itself on
// 10.234.0.254), with real CRIU and real QUIC, and break the holder of the
// counter: cut off from its peers (fencing) or killed outright with
// everything it runs (silent loss in the middle of a two-phase commit).

// fenceCluster is three formed agents in their namespaces.
type fenceCluster struct {
	lc     *localCluster
	agents []*localAgent
	ns     map[string]*netns.NS // by agent name
	ip     map[string]string    // by agent name
	leader string               // when the cluster formed
	// criuSeen are the CRIU processes stageReached saw mid-dump: CRIU
	// retitles itself, so by the kill its command line may no longer
	// say criu.
	criuSeen []int
}

// newFenceCluster starts f1, f2, f3 (zones a, b, c) and waits until they
// formed one cluster. Everything goes when the test ends, also on failure:
// the agents, whatever is left in their namespaces, the namespaces, the
// switch.
func newFenceCluster(t *testing.T) *fenceCluster {
	t.Helper()
	if _, err := netns.CleanupStale(netns.Prefix + "fn"); err != nil {
		t.Logf("stale namespaces: %v", err)
	}
	sw, err := netns.NewSwitch("fnsw", "10.234.0.254", 24)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })
	fc := &fenceCluster{ns: map[string]*netns.NS{}, ip: map[string]string{}}
	for i, name := range []string{"f1", "f2", "f3"} {
		ns, err := netns.New("fn" + name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ns.Close() })
		ip := fmt.Sprintf("10.234.0.%d", i+1)
		if err := sw.Plug(ns, ip); err != nil {
			t.Fatal(err)
		}
		fc.ns[name], fc.ip[name] = ns, ip
		fc.agents = append(fc.agents, &localAgent{Name: name, IP: ip, Zone: string(rune('a' + i)),
			Args: []string{"--bootstrap-expect", "3"},
			Wrap: func(bin string, args ...string) *exec.Cmd { return ns.Command(bin, args...) }})
	}
	t.Cleanup(func() { // after the agents stopped: what they left behind
		for _, ns := range fc.ns {
			killNS(ns)
		}
	})
	fc.lc = &localCluster{bin: testBin, dir: t.TempDir()}
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, fc.lc)
		}
		fc.lc.stopAll()
	})
	for _, a := range fc.agents {
		if err := fc.lc.start(a, fc.agents[0].IP+":7946"); err != nil {
			t.Fatal(err)
		}
	}
	st, err := waitStatus(ctxFor(t, 60*time.Second), fc.agents[0].URL(), wantFormed(3))
	if err != nil {
		t.Fatal(err)
	}
	fc.leader = st.Leader
	return fc
}

// agent returns the agent named name.
func (fc *fenceCluster) agent(name string) *localAgent {
	for _, a := range fc.agents {
		if a.Name == name {
			return a
		}
	}
	panic("no agent " + name)
}

// client is the admin API of the agent named name.
func (fc *fenceCluster) client(name string) *api.Client {
	return envClient(fc.agent(name).URL())
}

// others are the agents other than name.
func (fc *fenceCluster) others(name string) []string {
	var out []string
	for _, a := range fc.agents {
		if a.Name != name {
			out = append(out, a.Name)
		}
	}
	return out
}

// nonLeader is an agent that did not lead when the cluster formed.
func (fc *fenceCluster) nonLeader() string {
	return fc.others(fc.leader)[0]
}

// dataDir is an agent's --data-dir.
func (fc *fenceCluster) dataDir(name string) string {
	return filepath.Join(fc.lc.dir, name, "data")
}

// submitCounter submits the counter (criu mode, checkpoints on request
// only) preferring holder, and waits until it runs there with a standby.
func (fc *fenceCluster) submitCounter(t *testing.T, counter, holder string, port, ballastMiB, memMiB int) api.Workload {
	t.Helper()
	spec := fmt.Sprintf("id: counter\ncommand: [%s, --port, \"%d\", --ballast-mib, \"%d\"]\n"+
		"checkpoint: {mode: criu, interval: 1h}\nservice: {port: %d}\nresources: {memory_mib: %d}\n"+
		"placement: {prefer: [%s]}\n", counter, port, ballastMiB, port, memMiB, holder)
	c := fc.client(holder)
	if _, err := c.Submit(ctxFor(t, 30*time.Second), []byte(spec), "application/yaml"); err != nil {
		t.Fatal(err)
	}
	return waitFor(t, c, 60*time.Second, "the counter running on "+holder+" with a standby", func(w api.Workload) bool {
		return w.State == string(fsm.WorkloadRunning) && w.Holder == holder && len(w.Standbys) == 1
	})
}

// waitFor polls the workload "counter" through c until ok accepts it; it
// fails the test after d.
func waitFor(t *testing.T, c *api.Client, d time.Duration, what string, ok func(api.Workload) bool) api.Workload {
	t.Helper()
	deadline := time.Now().Add(d)
	var last api.Workload
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		last, err = c.Workload(ctx, "counter")
		cancel()
		if err == nil && ok(last) {
			return last
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v; last %+v, err %v", what, d, last, err)
	return last
}

// valueAt is GET /value on the counter at hostport (no increment).
func valueAt(hostport string, timeout time.Duration) (int, error) {
	hc := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get("http://" + hostport + "/value")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: %s", resp.Status, b)
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// answer is one successful probe: when the request started, when its
// answer was in, and the value.
type answer struct {
	start, end time.Time
	value      int
}

// prober GETs /value on every host's counter port every 10 ms (50 ms
// timeout, a fresh connection each time) and records the answers. It
// stops on close or after max, whichever comes first.
type prober struct {
	mu      sync.Mutex          // guards answers
	answers map[string][]answer // by host IP

	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

func startProber(t *testing.T, ips []string, port int, max time.Duration) *prober {
	p := &prober{answers: map[string][]answer{}, stop: make(chan struct{})}
	deadline := time.Now().Add(max)
	for _, ip := range ips {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.probe(ip, port, deadline)
		}()
	}
	t.Cleanup(p.close)
	return p
}

func (p *prober) probe(ip string, port int, deadline time.Time) {
	hostport := fmt.Sprintf("%s:%d", ip, port)
	for time.Now().Before(deadline) {
		start := time.Now()
		if v, err := valueAt(hostport, 50*time.Millisecond); err == nil {
			end := time.Now()
			p.mu.Lock()
			p.answers[ip] = append(p.answers[ip], answer{start, end, v})
			p.mu.Unlock()
		}
		select {
		case <-p.stop:
			return
		case <-time.After(time.Until(start.Add(10 * time.Millisecond))):
		}
	}
}

// close stops the prober and waits for it; it is idempotent.
func (p *prober) close() {
	p.once.Do(func() { close(p.stop) })
	p.wg.Wait()
}

// of returns the answers from ip so far.
func (p *prober) of(ip string) []answer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.answers[ip])
}

// waitAnswer waits until ip has answered a probe that started after
// since; it fails the test after d.
func (p *prober) waitAnswer(t *testing.T, ip string, since time.Time, d time.Duration) answer {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, a := range p.of(ip) {
			if a.start.After(since) {
				return a
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the counter on %s answered no probe within %v", ip, d)
	return answer{}
}

// cutTable is the nftables table cut adds and heal deletes.
const cutTable = "fn_cut"

// cut separates holder from peers and nothing else: holder drops what
// arrives from the peers, and each peer what arrives from holder, silently
// (dropping on input, so that no sender sees an error, as when a cable is
// cut). The test, on 10.234.0.254, still reaches everyone.
func (fc *fenceCluster) cut(holder string, peers []string) error {
	var ips []string
	for _, p := range peers {
		ips = append(ips, fc.ip[p])
	}
	if err := fc.ns[holder].NFT(dropFrom(ips)); err != nil {
		return err
	}
	for _, p := range peers {
		if err := fc.ns[p].NFT(dropFrom([]string{fc.ip[holder]})); err != nil {
			return err
		}
	}
	return nil
}

func dropFrom(ips []string) string {
	return "table inet " + cutTable + " {\n\tchain in { type filter hook input priority -300; policy accept; " +
		"ip saddr { " + strings.Join(ips, ", ") + " } drop; }\n}\n"
}

// heal undoes cut.
func (fc *fenceCluster) heal(names ...string) error {
	var errs []error
	for _, n := range names {
		errs = append(errs, fc.ns[n].NFT("delete table inet "+cutTable+"\n"))
	}
	return errors.Join(errs...)
}

// nsProc is a process inside a namespace.
type nsProc struct {
	pid     int
	cmdline string
	state   string // R, S, T …
}

// nsProcs lists the live processes whose network namespace is ns.
func nsProcs(ns *netns.NS) []nsProc {
	var out []nsProc
	for _, pid := range netns.PIDs(ns.Path()) {
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		out = append(out, nsProc{pid: pid, cmdline: strings.ReplaceAll(string(cmd), "\x00", " "), state: netns.ProcState(pid)})
	}
	return out
}

// killNS is the host dying: SIGKILL to every process in the namespace,
// again until none is left (a dying agent may have forked). It returns
// the processes it killed.
func killNS(ns *netns.NS) []nsProc {
	var killed []nsProc
	for range 50 {
		procs := nsProcs(ns)
		if len(procs) == 0 {
			break
		}
		for _, p := range procs {
			if syscall.Kill(p.pid, syscall.SIGKILL) == nil && !slices.ContainsFunc(killed, func(k nsProc) bool { return k.pid == p.pid }) {
				killed = append(killed, p)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return killed
}

// counterProc is the counter's process in ns, if one runs there.
func counterProc(ns *netns.NS, counter string) (nsProc, bool) {
	for _, p := range nsProcs(ns) {
		if strings.HasPrefix(p.cmdline, counter+" ") {
			return p, true
		}
	}
	return nsProc{}, false
}

// logLine is the first line of an agent's log that contains s, "" if none.
func (fc *fenceCluster) logLine(name, s string) string {
	b, _ := os.ReadFile(filepath.Join(fc.lc.dir, name, "agent.log"))
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}

// TestPartitionedHolderStopsBeforeNewHolderServes: the counter's holder (not
// the Raft leader) is cut off from its two peers but not from the test's
// prober, which reads the counter on all three hosts every 10 ms. The
// workload moves to another host, and the probes show that no two hosts
// served it at once: the old holder's last answer came in before the new
// holder's first request was sent. The new epoch is greater, the count
// continues from the checkpoint (the increment after it is lost with the
// old holder), a result under the old epoch is refused after the heal, and
// the old holder, healed, never answers again and drops its frozen copy.
func TestPartitionedHolderStopsBeforeNewHolderServes(t *testing.T) {
	needCRIU(t)
	counter := buildCounter(t)
	fc := newFenceCluster(t)
	const port = 18140
	holder := fc.nonLeader()
	peers := fc.others(holder)
	w := fc.submitCounter(t, counter, holder, port, 16, 64)
	at := func(name string) string { return fmt.Sprintf("%s:%d", fc.ip[name], port) }
	for want := 1; want <= 2; want++ {
		if got := countAt(t, at(holder)); got != want {
			t.Fatalf("GET / = %d, want %d", got, want)
		}
	}
	ck, err := fc.client(holder).Checkpoint(ctxFor(t, 2*time.Minute), "counter")
	if err != nil {
		t.Fatal(err)
	}
	w = waitFor(t, fc.client(peers[0]), 20*time.Second, "checkpoint committed", func(w api.Workload) bool {
		return w.Checkpoint != nil && w.Checkpoint.Seq == ck.Seq
	})
	const committed = 2
	if got := countAt(t, at(holder)); got != committed+1 { // lost with the old holder
		t.Fatalf("GET / = %d after the checkpoint, want %d", got, committed+1)
	}

	p := startProber(t, []string{fc.ip["f1"], fc.ip["f2"], fc.ip["f3"]}, port, 90*time.Second)
	p.waitAnswer(t, fc.ip[holder], time.Time{}, 10*time.Second)
	if st, err := fc.client(peers[0]).Status(ctxFor(t, 5*time.Second)); err == nil {
		t.Logf("holder %s (standby %v), leader %s, cutting %s off from %v", holder, w.Standbys, st.Leader, holder, peers)
	}
	cutAt := time.Now()
	if err := fc.cut(holder, peers); err != nil {
		t.Fatal(err)
	}
	survivor := fc.client(peers[0])
	moved := waitFor(t, survivor, 90*time.Second, "the counter running on another host", func(m api.Workload) bool {
		return m.Holder != holder && m.Holder != "" && m.State == string(fsm.WorkloadRunning) && m.Epoch > w.Epoch
	})
	first := p.waitAnswer(t, fc.ip[moved.Holder], cutAt, 30*time.Second)
	t.Logf("cut to running on %s under epoch %d (was %d): %v", moved.Holder, moved.Epoch, w.Epoch, time.Since(cutAt).Round(time.Millisecond))
	if first.value != committed {
		t.Fatalf("the new holder's first answer is %d, want %d: the count continues from the checkpoint", first.value, committed)
	}
	if line := fc.logLine(holder, "lease ran out"); line != "" {
		t.Logf("%s: %s", holder, line)
	}
	if proc, ok := counterProc(fc.ns[holder], counter); ok && proc.state != "T" {
		t.Errorf("the cut-off holder's counter (pid %d) is in state %q while %s serves, want T (frozen)", proc.pid, proc.state, moved.Holder)
	}

	healAt := time.Now()
	if err := fc.heal(fc.agents[0].Name, fc.agents[1].Name, fc.agents[2].Name); err != nil {
		t.Fatal(err)
	}
	staleRefused(t, fc.client(holder), w.Epoch)
	gone := waitGone(t, fc.ns[holder], counter, 60*time.Second)
	// Keep probing a while after the heal: the old holder must stay silent.
	for time.Since(healAt) < 3*time.Second || time.Since(gone) < 2*time.Second {
		time.Sleep(100 * time.Millisecond)
	}
	p.close()
	t.Logf("after the heal the old holder's counter was gone in %v", gone.Sub(healAt).Round(time.Millisecond))
	checkOneServer(t, p, fc, holder, moved.Holder, cutAt, healAt)
	if got := countAt(t, at(moved.Holder)); got != committed+1 {
		t.Fatalf("GET / on %s = %d, want %d", moved.Holder, got, committed+1)
	}
}

// staleRefused posts a result under epoch through c until it gets a
// definite answer, which must be 409 stale epoch.
func staleRefused(t *testing.T, c *api.Client, epoch uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.AppendResult(ctx, "counter", epoch, "late")
		cancel()
		var re *api.RemoteError
		switch {
		case err == nil:
			t.Fatalf("a result under the old epoch %d was accepted", epoch)
		case errors.Is(err, fsm.ErrStaleEpoch) && errors.As(err, &re) && re.Status == http.StatusConflict:
			return
		case time.Now().After(deadline):
			t.Fatalf("a result under the old epoch %d: %v, want 409 stale epoch", epoch, err)
		}
		time.Sleep(200 * time.Millisecond) // no leader known yet, say
	}
}

// waitGone waits until no counter runs in ns and returns when it saw that.
func waitGone(t *testing.T, ns *netns.NS, counter string, d time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		p, ok := counterProc(ns, counter)
		if !ok {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("the old holder still runs its counter (pid %d, state %s) %v after the heal", p.pid, p.state, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkOneServer checks the probes: the old holder's last answer came in
// before the new holder's first request went out, it never answered after
// the heal, and the third host never answered.
func checkOneServer(t *testing.T, p *prober, fc *fenceCluster, old, now string, cutAt, healAt time.Time) {
	t.Helper()
	olds, news := p.of(fc.ip[old]), p.of(fc.ip[now])
	if len(olds) == 0 || len(news) == 0 {
		t.Fatalf("answers: %d from the old holder, %d from the new", len(olds), len(news))
	}
	lastOld := olds[len(olds)-1]
	firstNew := news[0]
	for _, a := range news {
		if a.start.Before(firstNew.start) {
			firstNew = a
		}
	}
	for _, a := range olds {
		if a.end.After(lastOld.end) {
			lastOld = a
		}
	}
	rel := func(x time.Time) time.Duration { return x.Sub(cutAt).Round(time.Millisecond) }
	t.Logf("probes (times after the cut): old holder %s answered %d times, last answer in at %v; "+
		"new holder %s answered %d times, first request out at %v; gap %v; heal at %v",
		old, len(olds), rel(lastOld.end), now, len(news), rel(firstNew.start),
		firstNew.start.Sub(lastOld.end).Round(time.Millisecond), rel(healAt))
	if !lastOld.end.Before(firstNew.start) {
		t.Errorf("two holders served at once: the old holder answered until %v, the new one from %v", rel(lastOld.end), rel(firstNew.start))
	}
	if lastOld.end.After(healAt) {
		t.Errorf("the old holder answered after the heal, at %v (value %d)", rel(lastOld.end), lastOld.value)
	}
	for _, name := range fc.others(old) {
		if name != now && len(p.of(fc.ip[name])) > 0 {
			t.Errorf("%s, which never held the counter, answered %d probes", name, len(p.of(fc.ip[name])))
		}
	}
}

// TestHolderKilledMidTransferStandbyRestoresPreviousCheckpoint: the holder of
// the counter (256 MiB, criu mode, one standby) commits checkpoint #1 at
// count 3, counts on to 5, rewrites its memory and starts checkpoint #2;
// then the host dies: every process in its namespace (agent, counter, CRIU)
// gets SIGKILL, during the transfer of #2 to the standby or during the CRIU
// dump of #2 itself. #2 is never committed; once the lease lapses the
// counter runs on another host, restored from #1 (count 3, not 5), under a
// greater epoch, and the new holder's next checkpoint commits.
func TestHolderKilledMidTransferStandbyRestoresPreviousCheckpoint(t *testing.T) {
	needCRIU(t)
	counter := buildCounter(t)
	t.Run("mid-transfer", func(t *testing.T) { holderKilled(t, counter, killMidTransfer) })
	t.Run("mid-dump", func(t *testing.T) { holderKilled(t, counter, killMidDump) })
}

// killStage is when holderKilled kills the holder's host.
type killStage int

const (
	killMidTransfer killStage = iota + 1 // the standby is receiving checkpoint #2
	killMidDump                          // CRIU is dumping checkpoint #2 on the holder
)

func holderKilled(t *testing.T, counter string, stage killStage) {
	fc := newFenceCluster(t)
	const port = 18141
	holder := fc.nonLeader()
	w := fc.submitCounter(t, counter, holder, port, 256, 400)
	standby := w.Standbys[0]
	at := func(name string) string { return fmt.Sprintf("%s:%d", fc.ip[name], port) }
	const committed, extra = 3, 2
	for want := 1; want <= committed; want++ {
		if got := countAt(t, at(holder)); got != want {
			t.Fatalf("GET / = %d, want %d", got, want)
		}
	}
	hc := fc.client(holder)
	ck1, err := hc.Checkpoint(ctxFor(t, 3*time.Minute), "counter")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, fc.client(standby), 30*time.Second, "checkpoint #1 committed on the standby", func(w api.Workload) bool {
		return w.Checkpoint != nil && w.Checkpoint.Seq == ck1.Seq && slices.Contains(w.Checkpoint.Standbys, standby)
	})
	for want := committed + 1; want <= committed+extra; want++ {
		if got := countAt(t, at(holder)); got != want {
			t.Fatalf("GET / = %d, want %d", got, want)
		}
	}
	// Rewrite all of the ballast: checkpoint #2 shares nothing with #1, so
	// its transfer takes a while.
	resp, err := http.Post("http://"+at(holder)+"/ballast/touch?percent=100", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	pending := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		_, err := hc.Checkpoint(ctx, "counter")
		pending <- err
	}()
	begin := time.Now()
	killed := fc.killDuring(t, holder, standby, ck1.Seq+1, stage, pending)
	t.Logf("killed %s's host %v after asking for checkpoint #%d: %s", holder, time.Since(begin).Round(time.Millisecond), ck1.Seq+1, describe(killed))
	fc.checkNotArrived(t, holder, standby, ck1.Seq+1, stage, killed)
	select {
	case err := <-pending:
		if err == nil {
			t.Fatalf("checkpoint #%d succeeded although its holder was killed", ck1.Seq+1)
		}
		t.Logf("the pending checkpoint's request: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the checkpoint request did not end after its holder was killed")
	}

	killAt := time.Now()
	sc := fc.client(standby)
	moved := waitFor(t, sc, 90*time.Second, "the counter running on another host", func(m api.Workload) bool {
		return m.Holder != holder && m.Holder != "" && m.State == string(fsm.WorkloadRunning) && m.Epoch > w.Epoch
	})
	t.Logf("kill to running on %s (standby was %s) under epoch %d (was %d): %v; %s",
		moved.Holder, standby, moved.Epoch, w.Epoch, time.Since(killAt).Round(time.Millisecond), moved.Message)
	if moved.Checkpoint == nil || moved.Checkpoint.Seq != ck1.Seq {
		t.Fatalf("latest committed checkpoint %+v, want #%d: the pending one must never commit", moved.Checkpoint, ck1.Seq)
	}
	if got := valueEventually(t, at(moved.Holder)); got != committed {
		t.Fatalf("GET /value on %s = %d, want %d (checkpoint #%d), not %d", moved.Holder, got, committed, ck1.Seq, committed+extra)
	}
	if got := countAt(t, at(moved.Holder)); got != committed+1 {
		t.Fatalf("GET / on %s = %d, want %d", moved.Holder, got, committed+1)
	}
	// The dead epoch's pending checkpoint blocks nothing: the new holder
	// commits its own.
	next, err := fc.client(moved.Holder).Checkpoint(ctxFor(t, 3*time.Minute), "counter")
	if err != nil {
		t.Fatalf("a checkpoint on the new holder: %v", err)
	}
	after := waitFor(t, sc, 30*time.Second, "the new holder's checkpoint committed", func(m api.Workload) bool {
		return m.Checkpoint != nil && m.Checkpoint.Seq == next.Seq
	})
	t.Logf("the new holder committed checkpoint #%d under epoch %d with copies on %v", next.Seq, after.Checkpoint.Epoch, after.Checkpoint.Standbys)
	if next.Seq <= ck1.Seq {
		t.Fatalf("the new holder's checkpoint is #%d, want more than #%d", next.Seq, ck1.Seq)
	}
}

// killDuring watches for stage of checkpoint seq and then kills the
// holder's host. It fails the test if the checkpoint request ends first.
func (fc *fenceCluster) killDuring(t *testing.T, holder, standby string, seq uint64, stage killStage, pending chan error) []nsProc {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if fc.stageReached(holder, standby, seq, stage) {
			return killNS(fc.ns[holder])
		}
		select {
		case err := <-pending:
			t.Fatalf("checkpoint #%d ended (%v) before the moment to kill was seen", seq, err)
		case <-time.After(2 * time.Millisecond):
		}
	}
	t.Fatalf("checkpoint #%d: the moment to kill never came", seq)
	return nil
}

// stageReached reports whether checkpoint seq is at stage: the standby
// receives it into its staging (recv-<workload hash>-<seq>-<digest>), or
// CRIU runs on the holder while the holder's staging holds an unsealed
// checkpoint.
func (fc *fenceCluster) stageReached(holder, standby string, seq uint64, stage killStage) bool {
	switch stage {
	case killMidTransfer:
		return len(stagings(fc.dataDir(standby), fmt.Sprintf("recv-*-%d-*", seq))) > 0
	case killMidDump:
		if len(stagings(fc.dataDir(holder), "stage-*")) == 0 {
			return false
		}
		fc.criuSeen = nil
		for _, p := range nsProcs(fc.ns[holder]) {
			if isCRIU(p) {
				fc.criuSeen = append(fc.criuSeen, p.pid)
			}
		}
		return len(fc.criuSeen) > 0
	}
	return false
}

// stagings lists the entries of a store's staging matching pattern.
func stagings(dataDir, pattern string) []string {
	m, _ := filepath.Glob(filepath.Join(dataDir, "checkpoints", ".staging", pattern))
	return m
}

func isCRIU(p nsProc) bool { return strings.Contains(p.cmdline, "sbin/criu") }

// checkNotArrived checks that the kill came at the stage it meant to:
// mid-dump, CRIU was among the processes killed and the holder never
// sealed checkpoint seq; mid-transfer, the holder had sealed it and the
// standby had not.
func (fc *fenceCluster) checkNotArrived(t *testing.T, holder, standby string, seq uint64, stage killStage, killed []nsProc) {
	t.Helper()
	sealed := func(name string) bool {
		_, err := os.Stat(filepath.Join(fc.dataDir(name), "checkpoints", "counter", strconv.FormatUint(seq, 10)))
		return err == nil
	}
	switch stage {
	case killMidDump:
		criu := slices.ContainsFunc(killed, func(p nsProc) bool { return isCRIU(p) || slices.Contains(fc.criuSeen, p.pid) })
		if !criu || sealed(holder) {
			t.Fatalf("not killed mid-dump: CRIU (%v) among the killed %v, #%d sealed on the holder %v", fc.criuSeen, criu, seq, sealed(holder))
		}
	case killMidTransfer:
		if !sealed(holder) || sealed(standby) {
			t.Fatalf("not killed mid-transfer: #%d sealed on the holder %v, on the standby %v", seq, sealed(holder), sealed(standby))
		}
	}
}

// describe names the killed processes.
func describe(ps []nsProc) string {
	var out []string
	for _, p := range ps {
		f := strings.Fields(p.cmdline)
		name := "?"
		if len(f) > 0 {
			name = filepath.Base(f[0])
		}
		if isCRIU(p) {
			name = "criu"
		}
		out = append(out, fmt.Sprintf("%s[%d]", name, p.pid))
	}
	return strings.Join(out, " ")
}

// valueEventually is GET /value on the counter at hostport once it answers
// (it may be restoring).
func valueEventually(t *testing.T, hostport string) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, err := valueAt(hostport, 2*time.Second)
		if err == nil {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("the counter at %s does not answer: %v", hostport, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
