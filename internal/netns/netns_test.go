package netns

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// needRoot skips without root, except under CI=true, where it fails.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true and network namespaces need root")
	}
	t.Skip("network namespaces need root")
}

func TestNamespaceWithVeth(t *testing.T) {
	needRoot(t)
	ns, err := New("t")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	if !strings.HasPrefix(ns.Name(), Prefix+"t-") || ns.Path() != "/run/netns/"+ns.Name() {
		t.Errorf("name %q, path %q", ns.Name(), ns.Path())
	}
	sub := rand.IntN(256) // a /30 of 10.253.sub.0/24, so parallel runs rarely collide
	hostIP, nsIP := fmt.Sprintf("10.253.%d.1", sub), fmt.Sprintf("10.253.%d.2", sub)
	if err := ns.Veth(hostIP, nsIP, 30); err != nil {
		t.Fatal(err)
	}
	out, err := ns.Command("ip", "-br", "addr").CombinedOutput()
	if err != nil || !strings.Contains(string(out), nsIP+"/30") {
		t.Fatalf("inside: %s %v", out, err)
	}

	// A listener inside (this test binary, re-run as a helper) answers
	// from the root namespace over the veth.
	srv := ns.Command(os.Args[0], "-test.run=^TestHelperServe$")
	srv.Env = append(os.Environ(), "NETNS_TEST_SERVE=0.0.0.0:18999")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	if got := dialRetry(t, nsIP+":18999"); got != "hello" {
		t.Errorf("read %q from inside the namespace", got)
	}

	if err := ns.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ns.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := os.Stat(ns.Path()); !os.IsNotExist(err) {
		t.Errorf("%s still exists after Close: %v", ns.Path(), err)
	}
	if linkExists("lbt" + ns.id + "h") {
		t.Error("the veth is still there after Close")
	}
}

// TestHelperServe is not a test: run with NETNS_TEST_SERVE=ADDR, it
// answers "hello" to one connection on ADDR.
func TestHelperServe(t *testing.T) {
	addr := os.Getenv("NETNS_TEST_SERVE")
	if addr == "" {
		return // run as a test: nothing to do
	}
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(c, "hello")
	c.Close()
}

// dialRetry reads one line from addr, retrying while the server starts.
func dialRetry(t *testing.T, addr string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			defer c.Close()
			b := make([]byte, 64)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _ := c.Read(b)
			return strings.TrimSpace(string(b[:n]))
		}
		if time.Now().After(deadline) {
			t.Fatalf("dial %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCleanupStale(t *testing.T) {
	needRoot(t)
	live, err := New("st")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Close() })
	// A namespace whose creator cannot exist (PID above any pid_max).
	stale := fmt.Sprintf("%sst-%d-dead00", Prefix, 1<<23)
	if out, err := exec.Command("ip", "netns", "add", stale).CombinedOutput(); err != nil {
		t.Fatalf("%s %v", out, err)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", stale).Run() })

	deleted, err := CleanupStale(Prefix + "st-")
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 1 || deleted[0] != stale {
		t.Errorf("deleted %v, want only %s", deleted, stale)
	}
	if _, err := os.Stat(live.Path()); err != nil {
		t.Errorf("the live namespace was removed: %v", err)
	}
	if _, err := CleanupStale("other-"); err == nil {
		t.Error("CleanupStale accepted a prefix outside Prefix")
	}
}
