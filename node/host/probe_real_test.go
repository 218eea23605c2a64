package host

import (
	"context"
	"os"
	"slices"
	"testing"

	"github.com/lifeboat/lifeboat/fsm"
)

// TestProbeThisHost runs the real probe. In CI, as root, a host with an
// installed criu must serve criu mode: the installer promises it.
func TestProbeThisHost(t *testing.T) {
	r := Probe(context.Background(), DefaultConfig())
	for _, c := range r.Checks {
		t.Logf("%-5v %-14s %s", c.OK, c.Name, c.Detail)
	}
	t.Logf("modes %v", r.Modes)
	if len(r.Checks) != 9 {
		t.Fatalf("%d checks, want 9", len(r.Checks))
	}
	for _, m := range []string{fsm.ModeApp, fsm.ModeNone} {
		if !slices.Contains(r.Modes, m) {
			t.Errorf("modes %v lack %q", r.Modes, m)
		}
	}
	if r.Root != (os.Geteuid() == 0) {
		t.Errorf("Root = %v, euid %d", r.Root, os.Geteuid())
	}
	ci := os.Getenv("CI") == "true"
	criu := FindCRIU()
	switch {
	case ci && r.Root && criu == "":
		t.Errorf("CI as root but no criu at %s or on PATH: the installer should have put one there", InstalledCRIU)
	case ci && r.Root && !slices.Contains(r.Modes, fsm.ModeCRIU):
		t.Errorf("CI as root with criu %s, but modes %v lack criu", criu, r.Modes)
	case criu == "":
		t.Logf("no criu installed yet (%s); not required outside CI", InstalledCRIU)
	}
}
