package nemesis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/jepsen/cluster"
	"github.com/lifeboat/lifeboat/jepsen/history"
	"github.com/lifeboat/lifeboat/node/api"
)

// The tests below share one 3-host cluster (labels "jpn", 10.242.0.0/24)
// and check each fault for real: TCP handshakes between the hosts'
// namespaces, UDP loss counted packet by packet, the agents' status.

const probeTimeout = 800 * time.Millisecond

func startCluster(t *testing.T) *cluster.Cluster {
	t.Helper()
	cfg := cluster.TestConfig(t, "jpn", "10.242.0", 3)
	cfg.AgentArgs = append(cfg.AgentArgs, "--unsafe-clock-control")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := cluster.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cluster.DumpOnFailure(t, c)
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// reach reports whether from completes a TCP handshake with to's admin
// port.
func reach(c *cluster.Cluster, from, to string, port int) bool {
	return c.Host(from).Connect(fmt.Sprintf("%s:%d", c.Host(to).IP, port), probeTimeout) == nil
}

// checkLinks: every link of f is cut (no handshake from From to To), and
// every pair of hosts not in f's links in either direction still connects.
func checkLinks(t *testing.T, c *cluster.Cluster, f *Fault, wantCut bool) {
	t.Helper()
	for _, a := range c.Hosts {
		for _, b := range c.Hosts {
			if a == b {
				continue
			}
			cut := slices.Contains(f.Links, Link{a.Name, b.Name}) || slices.Contains(f.Links, Link{b.Name, a.Name})
			want := !(cut && wantCut)
			if got := reach(c, a.Name, b.Name, 7949); got != want {
				t.Errorf("%s -> %s:7949 connects %v, want %v (%s, links %v, in place %v)", a.Name, b.Name, got, want, f.Detail, f.Links, wantCut)
			}
		}
	}
}

// udpLoss sends n datagrams from one host to another's namespace and
// returns the fraction that did not arrive.
func udpLoss(t *testing.T, c *cluster.Cluster, from, to string, n int) float64 {
	t.Helper()
	dst := c.Host(to)
	ln, err := dst.ListenUDP(dst.IP + ":17999")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conn *net.UDPConn
	if err := c.Host(from).NS.Do(func() error {
		var err error
		conn, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP(dst.IP), Port: 17999})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got := make(chan int, 1)
	go func() {
		seen, buf := 0, make([]byte, 64)
		for {
			_ = ln.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			if _, err := ln.Read(buf); err != nil {
				got <- seen
				return
			}
			seen++
		}
	}()
	for i := range n {
		if _, err := conn.Write([]byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	return 1 - float64(<-got)/float64(n)
}

// tables lists the nftables tables in a host's namespace.
func tables(t *testing.T, h *cluster.Host) string {
	t.Helper()
	out, err := h.NS.Command("nft", "list", "tables").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list tables in %s: %v: %s", h.Name, err, out)
	}
	return strings.TrimSpace(string(out))
}

func inject(t *testing.T, c *cluster.Cluster, n Nemesis, seed uint64) *Fault {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f, err := n.Inject(ctx, c, rand.New(rand.NewPCG(seed, 7)))
	if err != nil {
		t.Fatalf("%s: %v", n.Kind(), err)
	}
	t.Logf("%s: %s (hosts %v, links %v)", f.Kind, f.Detail, f.Hosts, f.Links)
	return f
}

func heal(t *testing.T, f *Fault) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := f.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.Heal(ctx); err != nil {
		t.Fatalf("second Heal: %v", err)
	}
}

// formed waits until the cluster is whole again, so that the next fault
// starts from a healthy cluster.
func formed(t *testing.T, c *cluster.Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	if err := c.WaitFormed(ctx); err != nil {
		t.Fatal(err)
	}
}

// submit runs a sleep workload (no checkpoints) and waits for its holder.
func submit(t *testing.T, c *cluster.Cluster, id string) *cluster.Host {
	t.Helper()
	spec := fmt.Sprintf("id: %s\ncommand: [/bin/sleep, \"3600\"]\ncheckpoint: {mode: none}\nresources: {memory_mib: 16}\n", id)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Hosts[0].Client().Submit(ctx, []byte(spec), "application/yaml"); err != nil {
		t.Fatal(err)
	}
	for ctx.Err() == nil {
		if h, err := c.Holder(ctx, id); err == nil {
			if w, err := h.Client().Workload(ctx, id); err == nil && w.State == "running" {
				return h
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("workload %s never ran", id)
	return nil
}

func TestNetworkNemeses(t *testing.T) {
	c := startCluster(t)
	for i, n := range []Nemesis{PartitionHalves{}, IsolateLeader{}, OneWay{}} {
		t.Run(n.Kind(), func(t *testing.T) {
			f := inject(t, c, n, uint64(i))
			if len(f.Links) == 0 {
				t.Fatal("no links cut")
			}
			checkLinks(t, c, f, true)
			if n.Kind() == "one-way" {
				l := f.Links[0]
				if loss := udpLoss(t, c, l.To, l.From, 50); loss > 0.1 {
					t.Errorf("%s -> %s (the way left open): %.0f%% of UDP lost", l.To, l.From, loss*100)
				}
				if loss := udpLoss(t, c, l.From, l.To, 50); loss != 1 {
					t.Errorf("%s -> %s (cut): %.0f%% of UDP lost, want all", l.From, l.To, loss*100)
				}
			}
			for _, h := range c.Hosts { // the harness still reaches everyone
				if _, err := h.Status(context.Background(), 3*time.Second); err != nil {
					t.Errorf("the harness lost %s: %v", h.Name, err)
				}
			}
			heal(t, f)
			checkLinks(t, c, f, false)
			for _, h := range c.Hosts {
				if tb := tables(t, h); tb != "" {
					t.Errorf("%s keeps tables after heal: %s", h.Name, tb)
				}
			}
			formed(t, c)
		})
	}
	t.Run("isolate-holder+transfer-cut", func(t *testing.T) {
		holder := submit(t, c, "jw")
		f := inject(t, c, IsolateHolder("jw"), 1)
		if !slices.Contains(f.Hosts, holder.Name) || len(f.Links) != 2*(len(c.Hosts)-1) {
			t.Fatalf("isolate-holder acted on %v with links %v, want %s cut off", f.Hosts, f.Links, holder.Name)
		}
		checkLinks(t, c, f, true)
		heal(t, f)
		checkLinks(t, c, f, false)
		formed(t, c)

		holder, err := c.Holder(context.Background(), "jw")
		if err != nil {
			t.Fatal(err)
		}
		other := c.Hosts[0]
		if other == holder {
			other = c.Hosts[1]
		}
		if !reach(c, other.Name, holder.Name, TransferPort) {
			t.Fatalf("%s -> %s:%d: no TLS transfer listener before the cut", other.Name, holder.Name, TransferPort)
		}
		f = inject(t, c, TransferCut("jw"), 1)
		if reach(c, other.Name, holder.Name, TransferPort) {
			t.Errorf("%s -> %s:%d connects during transfer-cut", other.Name, holder.Name, TransferPort)
		}
		if !reach(c, other.Name, holder.Name, 7949) {
			t.Errorf("%s -> %s:7949 is cut too: transfer-cut must cut the transfer port only", other.Name, holder.Name)
		}
		heal(t, f)
		if !reach(c, other.Name, holder.Name, TransferPort) {
			t.Errorf("%s -> %s:%d fails after heal", other.Name, holder.Name, TransferPort)
		}
	})
	t.Run("flaky", func(t *testing.T) {
		f := inject(t, c, Flaky{Percent: 25}, 3)
		l := f.Links[0]
		loss := udpLoss(t, c, l.From, l.To, 400)
		t.Logf("%s: %.1f%% of 400 datagrams lost", l, loss*100)
		if loss < 0.10 || loss > 0.45 {
			t.Errorf("%s: %.1f%% lost, want about 25%%", l, loss*100)
		}
		heal(t, f)
		if loss := udpLoss(t, c, l.From, l.To, 200); loss > 0.02 {
			t.Errorf("%s after heal: %.1f%% lost", l, loss*100)
		}
	})
	t.Run("ring unsupported here", func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		if _, err := (Ring{}).Inject(context.Background(), c, r); !errors.Is(err, ErrTooFewHosts) {
			t.Errorf("ring on 3 hosts: %v, want ErrTooFewHosts", err)
		}
	})
	t.Run("delay", func(t *testing.T) { checkDelay(t, c) })
}

func TestRingPlan(t *testing.T) {
	got := ringPlan([]string{"a", "b", "c", "d", "e"})
	want := drops{"a": {"c", "d"}, "b": {"d", "e"}, "c": {"a", "e"}, "d": {"a", "b"}, "e": {"b", "c"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ringPlan = %v, want %v", got, want)
	}
	// Every host keeps a majority of 5 (itself and its two neighbours).
	for h, d := range got {
		if 5-len(d) != 3 {
			t.Errorf("%s reaches %d hosts", h, 5-len(d))
		}
	}
}

func TestProcessNemeses(t *testing.T) {
	c := startCluster(t)
	t.Run("pause", func(t *testing.T) {
		const hold = 4 * time.Second // above the 3 s lease TTL
		f := inject(t, c, Pause{Hold: hold}, 1)
		h := c.Host(f.Hosts[0])
		start := time.Now()
		if _, err := h.Status(context.Background(), 2*time.Second); err == nil {
			t.Fatalf("%s answers its status while paused", h.Name)
		}
		heal(t, f)
		if time.Since(start) < hold-time.Second {
			t.Errorf("healed after %v, want at least the hold %v", time.Since(start), hold)
		}
		if _, err := h.Status(context.Background(), 5*time.Second); err != nil {
			t.Fatalf("%s does not answer after resume: %v", h.Name, err)
		}
		formed(t, c)
	})
	t.Run("clock-jump", func(t *testing.T) {
		f := inject(t, c, ClockJump{Min: 30 * time.Second, Max: 40 * time.Second}, 3)
		h := c.Host(f.Hosts[0])
		stepped := func(want string) {
			t.Helper()
			b, _ := os.ReadFile(h.LogPath())
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			for i := len(lines) - 1; i >= 0; i-- {
				if strings.Contains(lines[i], "test clock stepped") {
					if !strings.Contains(lines[i], want) {
						t.Fatalf("%s's last clock step: %s, want %s", h.Name, lines[i], want)
					}
					return
				}
			}
			t.Fatalf("%s's log shows no clock step", h.Name)
		}
		stepped("from_offset=0s")
		// Two lease TTLs with a stepped wall clock: nobody is lost.
		time.Sleep(6 * time.Second)
		for _, o := range c.Hosts {
			waitState(t, o, h.Name, api.StateAlive)
		}
		heal(t, f)
		stepped("to_offset=0s")
		formed(t, c)
	})
	for i, n := range []Nemesis{KillRestart{}, NoticeLost{}} {
		t.Run(n.Kind(), func(t *testing.T) {
			f := inject(t, c, n, uint64(i+5))
			h := c.Host(f.Hosts[0])
			if h.Running() {
				t.Fatalf("%s still runs", h.Name)
			}
			if other := c.Hosts[(slices.Index(c.Hosts, h)+1)%len(c.Hosts)]; reach(c, other.Name, h.Name, 7949) {
				t.Fatalf("%s's API still accepts connections", h.Name)
			}
			heal(t, f)
			formed(t, c)
		})
	}
}

// TestNoticeNemeses runs each notice on a fresh cluster: the host is
// doomed until its cloud takes it back at the deadline (heal); booted
// again after it, it is alive.
func TestNoticeNemeses(t *testing.T) {
	for i, n := range []Nemesis{Notice{}, NoticeDuplicate{}, NoticeMany{}} {
		t.Run(n.Kind(), func(t *testing.T) {
			c := startCluster(t)
			f := inject(t, c, n, uint64(i+9))
			want := map[string]int{"notice": 1, "notice-duplicate": 1, "notice-many": 2}[n.Kind()]
			if len(f.Hosts) != want {
				t.Fatalf("notices on %v, want %d hosts", f.Hosts, want)
			}
			for _, name := range f.Hosts {
				notices := 1
				if n.Kind() == "notice-duplicate" {
					notices = 2
				}
				if st, err := c.Host(name).Emu.State(context.Background()); err != nil || len(st.Notices) != notices {
					t.Errorf("%s's emulator shows %d notices (%v), want %d", name, len(st.Notices), err, notices)
				}
				for _, h := range c.Hosts {
					waitState(t, h, name, api.StateDoomed, api.StateDraining)
				}
			}
			for _, h := range c.Hosts {
				if !slices.Contains(f.Hosts, h.Name) {
					waitState(t, h, h.Name, api.StateAlive)
				}
			}
			heal(t, f)
			for _, name := range f.Hosts {
				if st, err := c.Host(name).Emu.State(context.Background()); err != nil || len(st.Notices) != 0 {
					t.Errorf("%s's emulator still shows %d notices after heal (%v)", name, len(st.Notices), err)
				}
				if !c.Host(name).Running() {
					t.Errorf("%s was not booted again", name)
				}
				for _, h := range c.Hosts {
					waitState(t, h, name, api.StateAlive)
				}
			}
		})
	}
}

// waitState waits (15 s at most) until h's status shows member in one of
// the states.
func waitState(t *testing.T, h *cluster.Host, member string, states ...string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		st, err := h.Status(context.Background(), 2*time.Second)
		if err == nil {
			last = cluster.Summary(st)
			for _, m := range st.Members {
				if m.Name == member && slices.Contains(states, m.State) {
					return
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s never showed %s %v; last %s", h.Name, member, states, last)
}

func TestRun(t *testing.T) {
	c := startCluster(t)
	hist := history.New(time.Now())
	sched := Schedule{
		Nemeses: []Nemesis{Delay{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}, Ring{}, OneWay{}, PartitionHalves{}, Pause{Hold: time.Second}},
		MinGap:  100 * time.Millisecond, MaxGap: 400 * time.Millisecond,
		MinHold: 500 * time.Millisecond, MaxHold: 1500 * time.Millisecond,
		Mixed: true,
	}
	start := time.Now()
	if err := Run(context.Background(), c, sched, rand.New(rand.NewPCG(3, 4)), hist, time.Now().Add(8*time.Second)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("Run took %v for an 8 s schedule", d)
	}
	_, faults := hist.Snapshot()
	if len(faults) < 3 {
		t.Fatalf("%d faults in 8 s: %+v", len(faults), faults)
	}
	kinds := map[string]bool{}
	overlap := false
	for i, f := range faults {
		kinds[f.Kind] = true
		if f.End <= f.Start {
			t.Errorf("fault %+v: not healed", f)
		}
		if i > 0 && f.Start < faults[i-1].End {
			overlap = true
		}
	}
	t.Logf("%d faults, kinds %v, overlapping %v", len(faults), kinds, overlap)
	if kinds["ring"] {
		t.Errorf("an unsupported nemesis was recorded: %v", kinds)
	}
	for _, h := range c.Hosts {
		if tb := tables(t, h); tb != "" {
			t.Errorf("%s keeps tables after Run: %s", h.Name, tb)
		}
		if !h.Running() || h.Paused() {
			t.Errorf("%s: running %v, paused %v after Run", h.Name, h.Running(), h.Paused())
		}
	}
	formed(t, c)
}

func TestAllKindsUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, n := range All([]string{"w1", "w2"}) {
		if seen[n.Kind()] {
			t.Errorf("kind %s twice", n.Kind())
		}
		seen[n.Kind()] = true
	}
	if len(seen) != 17 {
		t.Errorf("%d kinds: %v", len(seen), seen)
	}
}
