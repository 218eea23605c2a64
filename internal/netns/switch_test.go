package netns

import (
	"os"
	"strings"
	"testing"
)

// TestSwitchJoinsHostsAndRoot: two hosts on a switch reach each other and
// the root namespace; an unplugged host does not; Close leaves nothing.
func TestSwitchJoinsHostsAndRoot(t *testing.T) {
	needRoot(t)
	sw, err := NewSwitch("swt", "10.231.0.254", 24)
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	a, err := New("swa")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New("swb")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := sw.Plug(a, "10.231.0.1"); err != nil {
		t.Fatal(err)
	}
	if err := sw.Plug(b, "10.231.0.2"); err != nil {
		t.Fatal(err)
	}
	ping := func(from *NS, to string) error {
		return from.Command("ping", "-c", "1", "-W", "1", to).Run()
	}
	if err := ping(a, "10.231.0.2"); err != nil {
		t.Fatalf("a cannot reach b: %v", err)
	}
	if err := ping(b, "10.231.0.254"); err != nil {
		t.Fatalf("b cannot reach the root namespace: %v", err)
	}
	if err := sw.Unplug(b); err != nil {
		t.Fatal(err)
	}
	if err := ping(a, "10.231.0.2"); err == nil {
		t.Fatal("a reaches b after Unplug")
	}
	if err := sw.Replug(b); err != nil {
		t.Fatal(err)
	}
	if err := ping(a, "10.231.0.2"); err != nil {
		t.Fatalf("a cannot reach b after Replug: %v", err)
	}
	name := sw.ns.Name()
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sw.ns.Path()); err == nil {
		t.Fatalf("switch namespace %s survives Close", name)
	}
	if links, _ := os.ReadDir("/sys/class/net"); true {
		for _, l := range links {
			if strings.HasPrefix(l.Name(), "lbt"+sw.ns.id) {
				t.Fatalf("root veth %s survives Close", l.Name())
			}
		}
	}
}
