package nemesis

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/internal/netns"
	"github.com/lifeboat/lifeboat/jepsen/cluster"
)

func TestDelayPlan(t *testing.T) {
	hs := []*cluster.Host{{Name: "h1", IP: "a"}, {Name: "h2", IP: "b"}, {Name: "h3", IP: "c"}}
	to := func(ts []delayTarget) map[string][]string {
		m := map[string][]string{}
		for _, t := range ts {
			m[t.ip] = t.to
		}
		return m
	}
	if got, want := to(delayPlan(hs, hs[1])), map[string][]string{"a": {"b"}, "b": {"a", "c"}, "c": {"b"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("one host: %v, want %v", got, want)
	}
	if got, want := to(delayPlan(hs, nil)), map[string][]string{"a": {"b", "c"}, "b": {"a", "c"}, "c": {"a", "b"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("every host: %v, want %v", got, want)
	}
	for _, n := range []Delay{{}, {Min: 2, Max: 1}, {Min: -1, Max: 1}} {
		if _, err := n.Inject(context.Background(), nil, rand.New(rand.NewPCG(1, 1))); err == nil {
			t.Errorf("%+v: no error", n)
		}
	}
}

// echoIn serves, inside ns on addr, an echo of 64-byte messages; the
// remote addresses it accepted from go to from.
func echoIn(t *testing.T, ns *netns.NS, addr string, from chan<- string) {
	t.Helper()
	var ln net.Listener
	if err := ns.Do(func() (err error) { ln, err = net.Listen("tcp4", addr); return err }); err != nil {
		t.Fatal(err)
	}
	wait := serveLoop(t, ln, func(c net.Conn) {
		from <- c.RemoteAddr().(*net.TCPAddr).IP.String()
		_, _ = io.Copy(c, c)
	})
	t.Cleanup(wait)
}

func dialIn(t *testing.T, ns *netns.NS, addr string) net.Conn {
	t.Helper()
	var c net.Conn
	if err := ns.Do(func() (err error) { c, err = net.DialTimeout("tcp4", addr, 3*time.Second); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rtt is the quickest of n round trips of a 64-byte message on c.
func rtt(c net.Conn, n int) (time.Duration, error) {
	best := time.Hour
	msg, buf := bytes.Repeat([]byte("x"), 64), make([]byte, 64)
	for range n {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		if _, err := c.Write(msg); err != nil {
			return 0, err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return 0, err
		}
		best = min(best, time.Since(start))
	}
	return best, nil
}

// TestDelayNetns: two namespaces on a switch, one host delayed both ways.
// A connection established before the fault (and tracked by conntrack,
// so that only the kill can end it) is killed; a new one goes through
// the proxy (the server sees the switch's root address) and its round
// trips take at least 2d, either way round; after heal connections are
// direct and fast again and no table of the fault is left.
func TestDelayNetns(t *testing.T) {
	cluster.Require(t)
	_, _ = netns.CleanupStale(netns.Prefix + "jpd")
	const root, ipA, ipB = "10.242.0.254", "10.242.0.1", "10.242.0.2"
	const d = 100 * time.Millisecond
	sw, err := netns.NewSwitch("jpdsw", root, 24)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sw.Close() })
	var nss []*netns.NS
	for i, ip := range []string{ipA, ipB} {
		ns, err := netns.New(fmt.Sprintf("jpd%c", 'a'+i))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ns.Close() })
		if err := sw.Plug(ns, ip); err != nil {
			t.Fatal(err)
		}
		nss = append(nss, ns)
	}
	a, b := nss[0], nss[1]
	fromB, fromA := make(chan string, 16), make(chan string, 16)
	echoIn(t, b, ipB+":7947", fromB) // Raft's port on b
	echoIn(t, a, ipA+":7949", fromA) // the HTTP port on a

	for _, ns := range nss { // conntrack tracks connections before the fault
		if err := ns.NFT("table ip jpdct {\n\tchain out { type filter hook output priority 0; policy accept; ct state established accept; }\n}\n"); err != nil {
			t.Fatal(err)
		}
	}
	old := dialIn(t, a, ipB+":7947")
	base, err := rtt(old, 5)
	if err != nil {
		t.Fatal(err)
	}
	<-fromB
	targets := []delayTarget{{ns: a, ip: ipA, to: []string{ipB}}, {ns: b, ip: ipB, to: []string{ipA}}}
	p, heal, err := startDelay(targets, []string{ipA, ipB}, d, d/5, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = heal(context.Background()) })
	if _, err := rtt(old, 1); err == nil {
		t.Error("a connection established before the fault still works: it was not killed")
	}
	for _, tc := range []struct {
		name     string
		from     *netns.NS
		addr     string
		accepted chan string
	}{{"a->b:7947", a, ipB + ":7947", fromB}, {"b->a:7949", b, ipA + ":7949", fromA}} {
		c := dialIn(t, tc.from, tc.addr)
		got, err := rtt(c, 5)
		if err != nil {
			t.Fatalf("%s through the proxy: %v", tc.name, err)
		}
		t.Logf("%s: RTT %v without the fault, %v with d=%v", tc.name, base, got, d)
		if got < 2*d {
			t.Errorf("%s: RTT %v with the fault, want >= 2d = %v", tc.name, got, 2*d)
		}
		if src := <-tc.accepted; src != root {
			t.Errorf("%s: the server saw %s, want the proxy's %s", tc.name, src, root)
		}
	}
	if n := p.relayed.Load(); n != 2 {
		t.Errorf("the proxy relayed %d connections, want 2", n)
	}
	moved := dialIn(t, a, ipB+":7947")
	<-fromB

	if err := heal(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := heal(context.Background()); err != nil {
		t.Fatalf("second heal: %v", err)
	}
	if _, err := rtt(moved, 1); err == nil {
		t.Error("a relayed connection survives heal")
	}
	after, err := rtt(dialIn(t, a, ipB+":7947"), 5)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a->b:7947 after heal: RTT %v", after)
	if src := <-fromB; src != ipA {
		t.Errorf("after heal the server saw %s, want a's own %s", src, ipA)
	}
	if after >= d {
		t.Errorf("RTT %v after heal, want well under d = %v", after, d)
	}
	for _, ns := range nss {
		if out, err := ns.Command("nft", "list", "tables").CombinedOutput(); err != nil || strings.Contains(string(out), " jd") {
			t.Errorf("%s after heal: tables %q, err %v", ns.Name(), out, err)
		}
	}
}

// checkDelay injects delays into the running cluster c, on every host
// (seed 1) and on one (seed 2): a status request between affected hosts
// takes at least 2d, the agents' Raft connections move through the
// proxy; after heal they are direct, fast again, and no table is left.
func checkDelay(t *testing.T, c *cluster.Cluster) {
	for _, seed := range []uint64{1, 2} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { checkDelayOnce(t, c, seed) })
	}
}

func checkDelayOnce(t *testing.T, c *cluster.Cluster, seed uint64) {
	const d = 150 * time.Millisecond
	f := inject(t, c, Delay{Min: d, Max: d}, seed)
	from, to := c.Hosts[0], c.Hosts[1]
	if len(f.Hosts) == 1 { // from another host to the delayed one
		to = c.Host(f.Hosts[0])
		if from == to {
			from = c.Hosts[2]
		}
	}
	slow, err := getIn(from.NS, to.API()+"/healthz", c.APITLS(), 3)
	if err != nil {
		t.Fatalf("%s -> %s status: %v", from.Name, to.Name, err)
	}
	t.Logf("%s -> %s: status in %v with the fault (d %v)", from.Name, to.Name, slow, d)
	if slow < 2*d {
		t.Errorf("%s -> %s: status in %v with the fault, want >= 2d = %v", from.Name, to.Name, slow, 2*d)
	}
	if !waitRaftVia(c, c.RootIP(), true) {
		t.Errorf("no agent's Raft connection goes through the proxy (from %s)", c.RootIP())
	}
	heal(t, f)
	for _, h := range c.Hosts {
		if tb := tables(t, h); tb != "" {
			t.Errorf("%s keeps tables after heal: %s", h.Name, tb)
		}
	}
	if !waitRaftVia(c, c.RootIP(), false) {
		t.Errorf("Raft connections still come from the proxy (%s) after heal", c.RootIP())
	}
	fast, err := getIn(from.NS, to.API()+"/healthz", c.APITLS(), 3)
	t.Logf("%s -> %s: status in %v after heal (err %v)", from.Name, to.Name, fast, err)
	if err != nil || fast >= 2*d {
		t.Errorf("%s -> %s after heal: %v, %v; want under 2d = %v", from.Name, to.Name, fast, err, 2*d)
	}
	formed(t, c)
}

// waitRaftVia waits (10 s at most) until some host has (want) or no host
// has (!want) an established connection to its Raft port from ip.
func waitRaftVia(c *cluster.Cluster, ip string, want bool) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		found := false
		for _, h := range c.Hosts {
			out, _ := h.NS.Command("ss", "-t", "-n", "-H", "state", "established", "sport", "=", ":7947", "and", "dst", ip).Output()
			found = found || strings.TrimSpace(string(out)) != ""
		}
		if found == want {
			return true
		}
	}
	return false
}

// getIn is the quickest of n GETs of url on new connections from inside
// ns.
func getIn(ns *netns.NS, url string, tc *tls.Config, n int) (time.Duration, error) {
	tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: tc, DialContext: func(ctx context.Context, _, addr string) (c net.Conn, err error) {
		err = ns.Do(func() error { c, err = (&net.Dialer{}).DialContext(ctx, "tcp4", addr); return err })
		return c, err
	}}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	best := time.Hour
	for range n {
		start := time.Now()
		resp, err := cl.Get(url)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		best = min(best, time.Since(start))
	}
	return best, nil
}
