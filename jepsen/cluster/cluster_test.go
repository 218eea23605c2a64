package cluster

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/internal/netns"
	"github.com/lifeboat/lifeboat/node/api"
)

// TestClusterFormsKillsAndRestarts starts three hosts (one per cloud),
// checks the leader, the zones and clouds the members report, kills a
// follower's whole host and restarts it, and checks that Close leaves
// nothing behind.
func TestClusterFormsKillsAndRestarts(t *testing.T) {
	cfg := TestConfig(t, "jpt", "10.241.0", 3)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	defer DumpOnFailure(t, c)

	leader, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := leader.Status(ctx, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("formed: %s", Summary(st))
	zones := map[string]bool{}
	for _, m := range st.Members {
		h := c.Host(m.Name)
		if h == nil || m.Cloud != h.Cloud || m.Zone != h.Zone {
			t.Errorf("member %s: cloud %q zone %q, want the emulator's %+v", m.Name, m.Cloud, m.Zone, h)
		}
		zones[m.Zone] = true
	}
	if len(zones) != 3 {
		t.Errorf("zones %v: want one per host", zones)
	}
	for _, h := range c.Hosts {
		es, err := h.Emu.State(ctx)
		if err != nil || es.Cloud != h.Cloud || es.Zone != h.Zone || len(es.Notices) != 0 {
			t.Errorf("%s's emulator (pid %d): %+v %v, want cloud %s zone %s and no notice", h.Name, h.Emu.Pid(), es, err, h.Cloud, h.Zone)
		}
	}

	victim := c.Hosts[0]
	if victim == leader {
		victim = c.Hosts[1]
	}
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	if victim.Running() || len(netns.PIDs(victim.NS.Path())) != 0 {
		t.Fatalf("%s still runs after Kill", victim.Name)
	}
	if err := leader.Connect(victim.IP+":7949", time.Second); err == nil {
		t.Fatalf("%s's API still accepts connections after Kill", victim.Name)
	}
	if _, err := leader.waitStatus(ctx, func(st api.Status) bool {
		for _, m := range st.Members {
			if m.Name == victim.Name {
				return m.State != api.StateAlive
			}
		}
		return false
	}); err != nil {
		t.Fatalf("the leader never saw %s go: %v", victim.Name, err)
	}
	if err := victim.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitFormed(ctx); err != nil {
		t.Fatalf("after the restart: %v", err)
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ents, _ := os.ReadDir("/run/netns")
	mine := fmt.Sprintf("-%d-", os.Getpid())
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), netns.Prefix+"jpt") && strings.Contains(e.Name(), mine) {
			t.Errorf("namespace %s is still there after Close", e.Name())
		}
	}
	for _, h := range c.Hosts {
		if h.Running() {
			t.Errorf("%s's agent still runs after Close", h.Name)
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", h.Emu.Pid())); h.Emu.Running() || err == nil {
			t.Errorf("%s's emulator (pid %d) still runs after Close", h.Name, h.Emu.Pid())
		}
	}
}

func TestValidate(t *testing.T) {
	good := DefaultConfig()
	good.Bin, good.Dir = "/bin/true", "/tmp"
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"ok", func(*Config) {}, ""},
		{"hosts", func(c *Config) { c.Hosts = 0 }, "Hosts"},
		{"bin", func(c *Config) { c.Bin = "" }, "Bin"},
		{"prefix", func(c *Config) { c.Prefix = "Jp-" }, "Prefix"},
		{"subnet", func(c *Config) { c.Subnet = "10.240" }, "Subnet"},
		{"cloud", func(c *Config) { c.Clouds = []string{"ibm"} }, "Clouds"},
		{"azure zones", func(c *Config) { c.Clouds = []string{"azure"} }, "three zones"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.edit(&c)
			err := c.Validate()
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestZonesDistinct(t *testing.T) {
	c := DefaultConfig()
	c.Hosts = 9
	seen := map[string]bool{}
	for i := range c.Hosts {
		s := c.emulatorSpec(i, "h")
		if s.Cloud != Azure && !strings.HasPrefix(s.Zone, s.Region) {
			t.Fatalf("host %d: zone %s is not in region %s", i, s.Zone, s.Region)
		}
		if seen[s.Zone] || seen[s.InstanceID] {
			t.Fatalf("host %d: zone %s or id %s repeats", i, s.Zone, s.InstanceID)
		}
		seen[s.Zone], seen[s.InstanceID] = true, true
	}
}

func TestControlBase(t *testing.T) {
	for line, want := range map[string]string{
		"AWS_EC2_METADATA_SERVICE_ENDPOINT=http://10.240.0.254:40001/": "http://10.240.0.254:40001",
		"GCE_METADATA_HOST=10.240.0.254:40002":                         "http://10.240.0.254:40002",
		"LIFEBOAT_AZURE_METADATA_ENDPOINT=http://10.240.0.254:40003":   "http://10.240.0.254:40003",
		"GCE_METADATA_HOST=10.240.0.254":                               "",
		"time=... level=INFO msg=emulating":                            "",
		"":                                                             "",
	} {
		got, err := controlBase(line)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("controlBase(%q) = %q, %v; want %q", line, got, err, want)
		}
	}
}

func TestFirstLine(t *testing.T) {
	var all strings.Builder
	f := newFirstLine(&all)
	for _, p := range []string{"GCE_METADATA", "_HOST=10.0.0.1:80\nmore", "\nlast\n"} {
		if _, err := f.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if got := <-f.line; got != "GCE_METADATA_HOST=10.0.0.1:80" {
		t.Errorf("first line %q", got)
	}
	select {
	case l := <-f.line:
		t.Errorf("a second line was handed on: %q", l)
	default:
	}
	if all.String() != "GCE_METADATA_HOST=10.0.0.1:80\nmore\nlast\n" {
		t.Errorf("passed on %q", all.String())
	}
}
