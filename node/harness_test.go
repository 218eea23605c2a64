package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/node/internal/memnet"

	"github.com/lifeboat/lifeboat/node/api"
	"github.com/lifeboat/lifeboat/transfer"
)

// testCluster runs peers in one process over a memnet.Net: the in-memory twin
// of gossip, Raft and the peer HTTP calls.
type testCluster struct {
	t     *testing.T
	net   *memnet.Net
	mu    sync.Mutex
	nodes map[string]*Node
	cfgs  map[string]Config
}

// peerSpec names a peer and its zone.
type peerSpec struct{ name, zone string }

func newTestCluster(t *testing.T, spares int, peers ...peerSpec) *testCluster {
	t.Helper()
	return newTestClusterWith(t, spares, nil, peers...)
}

// newTestClusterWith is newTestCluster with edit applied to each peer's
// config before it starts.
func newTestClusterWith(t *testing.T, spares int, edit func(*Config), peers ...peerSpec) *testCluster {
	t.Helper()
	tc := &testCluster{t: t, net: memnet.New(), nodes: map[string]*Node{}, cfgs: map[string]Config{}}
	ca, err := transfer.NewCA("test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range peers {
		cfg := DefaultTestConfig(p.name)
		cfg.APIToken = testToken
		if cfg.TLS, err = ca.Issue(p.name, transfer.RolePeer, time.Now()); err != nil {
			t.Fatal(err)
		}
		cfg.Net = tc.net
		cfg.DataDir = t.TempDir()
		cfg.BindAddr = fmt.Sprintf("127.0.10.%d", i+1) // never dialled: memnet carries everything
		cfg.Zone, cfg.Region = p.zone, "test"
		cfg.Spares = spares
		cfg.BootstrapExpect = 3
		cfg.Capacity.MemoryMiB, cfg.Capacity.CPUMillis = 1024, 2000
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
		if i > 0 {
			cfg.Join = []string{fmt.Sprintf("127.0.10.1:%d", cfg.GossipPort)}
		}
		if edit != nil {
			edit(&cfg)
		}
		tc.cfgs[p.name] = cfg
		tc.start(p.name)
	}
	t.Cleanup(tc.closeAll)
	return tc
}

func (tc *testCluster) start(name string) *Node {
	tc.t.Helper()
	n, err := New(tc.cfgs[name])
	if err != nil {
		tc.t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		tc.t.Fatal(err)
	}
	tc.mu.Lock()
	tc.nodes[name] = n
	tc.mu.Unlock()
	return n
}

// kill stops a peer as a crash would: no leave, its transports gone.
func (tc *testCluster) kill(name string) {
	tc.mu.Lock()
	n := tc.nodes[name]
	delete(tc.nodes, name)
	tc.mu.Unlock()
	if err := n.Close(); err != nil {
		tc.t.Logf("closing %s: %v", name, err)
	}
}

func (tc *testCluster) node(name string) *Node {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.nodes[name]
}

func (tc *testCluster) closeAll() {
	tc.mu.Lock()
	nodes := tc.nodes
	tc.nodes = map[string]*Node{}
	tc.mu.Unlock()
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.Close() }()
	}
	wg.Wait()
}

// isolate cuts every link between name's host and the others.
func (tc *testCluster) isolate(name string) {
	ip := tc.cfgs[name].BindAddr
	for other, cfg := range tc.cfgs {
		if other != name {
			tc.net.Cut(ip, cfg.BindAddr)
		}
	}
}

// eventually polls cond until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v: %v", what, timeout, err)
}

// status asks a peer for its status through its own Backend.
// testToken is the write token of every test peer's admin API.
const testToken = "test-write-token"

func (tc *testCluster) status(name string) api.Status {
	st, _ := tc.node(name).Status(context.Background())
	return st
}

// shape checks: one leader, voters in distinct zones, and role counts.
func shape(st api.Status, alive, voters, spares int) error {
	v, s, a, leaders := 0, 0, 0, 0
	zones := map[string]bool{}
	for _, m := range st.Members {
		if m.State == api.StateAlive {
			a++
		}
		if m.Leader {
			leaders++
		}
		switch m.Role {
		case api.RoleVoter:
			v++
			zones[m.Zone] = true
		case api.RoleSpare:
			s++
		}
	}
	if st.Leader == "" || leaders != 1 || a != alive || v != voters || len(zones) != voters || s != spares {
		return fmt.Errorf("leader %q (%d), alive %d, voters %d in %d zones, spares %d; want alive %d, %d voters, %d spares: %+v",
			st.Leader, leaders, a, v, len(zones), s, alive, voters, spares, st.Members)
	}
	return nil
}

// leaseValidWall is when n's own view of its lease ends, on the wall
// clock; zero when it never renewed.
func leaseValidWall(n *Node) time.Time {
	v := n.leases.validUntil()
	if v.IsZero() {
		return time.Time{}
	}
	return v.Wall(n.mono(), n.now())
}

// startCounter runs the app-mode counter on a1 (preferred) through the
// cluster and waits until it runs there with a standby and has answered
// once (its count is then 1). It returns the counter's port and the
// standby.
func startCounter(t *testing.T, tc *testCluster) (int, string) {
	t.Helper()
	bin := buildCounter(t)
	port := freePort(t)
	eventually(t, 20*time.Second, "formed", func() error { return shape(tc.status("a1"), 3, 3, 0) })
	ctx := context.Background()
	spec := fsm.WorkloadSpec{ID: "counter", Command: []string{bin, "--port", strconv.Itoa(port)},
		Checkpoint: fsm.CheckpointPolicy{Mode: fsm.ModeApp, Interval: fsm.Duration(time.Hour)},
		Service:    &fsm.Service{Port: port}, Resources: fsm.Resources{MemoryMiB: 16},
		Placement: fsm.Constraints{Prefer: []string{"a1"}}}
	if _, err := tc.node("b1").Submit(ctx, spec); err != nil {
		t.Fatal(err)
	}
	var standby string
	eventually(t, 20*time.Second, "running with a standby", func() error {
		w, err := tc.node("c1").Workload(ctx, "counter")
		if err != nil || w.State != string(fsm.WorkloadRunning) || w.Holder != "a1" || len(w.Standbys) != 1 {
			return fmt.Errorf("%+v %v", w, err)
		}
		standby = w.Standbys[0]
		return nil
	})
	eventually(t, 10*time.Second, "first answer", func() error {
		if n, err := getCount(port); err != nil || n != 1 {
			return fmt.Errorf("GET / = %d, %v; want 1", n, err)
		}
		return nil
	})
	return port, standby
}

func buildCounter(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "counter")
	out, err := exec.Command("go", "build", "-o", bin, "../examples/counter").CombinedOutput()
	if err != nil {
		t.Fatalf("building the counter: %v\n%s", err, out)
	}
	return bin
}

func getCount(port int) (int, error) {
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// freePort is a loopback TCP port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
