package runtime

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
)

// TestArgv: shells, and only shells, run under the init, and only in a
// PID namespace of their own with an init set; the shell is found here.
func TestArgv(t *testing.T) {
	shell := []string{"sh", "-c", "sleep 1"}
	for _, tc := range []struct {
		name    string
		command []string
		init    string
		ownNS   bool
		want    []string
	}{
		{"shell", shell, "/i", true, []string{"/i", "--", "/usr/bin/sh", "-c", "sleep 1"}},
		{"shell by path", []string{"/bin/bash", "-c", "x"}, "/i", true, []string{"/i", "--", "/bin/bash", "-c", "x"}},
		{"no init set", shell, "", true, shell},
		{"no PID namespace", shell, "/i", false, shell},
		{"not a shell", []string{"/bin/sleep", "1"}, "/i", true, []string{"/bin/sleep", "1"}},
		{"a program named like no shell", []string{"/opt/shiny/bin/shx"}, "/i", true, []string{"/opt/shiny/bin/shx"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := Workload{Init: tc.init}
			w.Spec.Command = tc.command
			got, err := argv(w, tc.ownNS)
			if err != nil {
				t.Fatal(err)
			}
			if tc.name == "shell" { // wherever this host keeps sh
				tc.want[2] = got[2]
				if !filepath.IsAbs(got[2]) {
					t.Fatalf("the shell's path %q is not absolute", got[2])
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("argv = %q, want %q", got, tc.want)
			}
		})
	}
	w := Workload{Init: "/i"}
	w.Spec.Command = []string{"/nonexistent/sh", "-c", "x"}
	if _, err := argv(w, true); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing shell: %v, want a not-exist error at start", err)
	}
}

// TestInitStopsShellBeforeGrace: a shell workload stops when the
// supervisor's SIGTERM comes, well before the grace ends in SIGKILL:
// whether it traps the signal or not, and although the shell waits for a
// foreground command. Without the init (the control) the stop takes the
// whole grace, which is why the init exists.
func TestInitStopsShellBeforeGrace(t *testing.T) {
	init := needInit(t)
	scripts := map[string]string{
		"plain": `echo ready; sleep 1000`,
		"trap":  `trap 'echo trapped; exit 3' TERM; echo ready; sleep 1000`,
	}
	for name, script := range scripts {
		t.Run(name, func(t *testing.T) {
			s, w := startShell(t, init, 10*time.Second, script)
			took := stopAll(s)
			if grace := s.cfg.StopTimeout; took >= grace {
				t.Fatalf("the stop took %v: the workload was still running when the %v grace ended", took, grace)
			}
			if name == "trap" && !logHas(w, "trapped") {
				t.Errorf("the shell's trap did not run: the SIGTERM never reached it")
			}
		})
		t.Run(name+" without init", func(t *testing.T) {
			s, w := startShell(t, "", time.Second, script)
			if took := stopAll(s); took < s.cfg.StopTimeout {
				t.Fatalf("the stop took %v, less than the %v grace: a shell as PID 1 took the SIGTERM, so this test shows nothing", took, s.cfg.StopTimeout)
			}
			if logHas(w, "trapped") {
				t.Error("the trap ran without the init")
			}
		})
	}
}

// startShell runs script as workload "sh" (mode none) under init on a
// supervisor with the grace stop, and waits for it to print "ready" and
// run a sleep.
func startShell(t *testing.T, init string, stop time.Duration, script string) (*Supervisor, Workload) {
	t.Helper()
	if os.Geteuid() != 0 {
		criuSkipOrFail(t, "a shell is PID 1 of its namespace only when run as root")
	}
	cfg := DefaultConfig(t.TempDir())
	cfg.Store, cfg.StopTimeout, cfg.Init = testStore(t, cfg.DataDir), stop, init
	s, err := New(cfg, newFakeCluster(), None{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	spec := fsm.WorkloadSpec{ID: "sh", Command: []string{"/bin/sh", "-c", script}, Checkpoint: fsm.CheckpointPolicy{Mode: fsm.ModeNone}}
	s.Sync([]Desired{{Spec: spec, Epoch: 1}})
	w := s.workload(spec, 1)
	// A shell runs a trap after its foreground command: the stop must come
	// while it waits for one, not before it has forked it.
	waitUntil(t, 10*time.Second, "the shell never printed ready and ran sleep", func() bool {
		pid := s.PID("sh")
		return pid > 0 && logHas(w, "ready") &&
			slices.ContainsFunc(nsProcs(t, pid), func(q nsProc) bool { return q.comm == "sleep" })
	})
	return s, w
}

// stopAll stops every workload of s and returns how long that took: Close
// returns once the processes are reaped.
func stopAll(s *Supervisor) time.Duration {
	start := time.Now()
	s.Sync(nil)
	s.Close()
	return time.Since(start)
}

// TestInitReapsOrphans: a process the shell left behind is handed to the
// init when its parent exits, and reaped when it exits in turn: no zombie
// stays in the workload's namespace.
func TestInitReapsOrphans(t *testing.T) {
	init := needInit(t)
	// The inner shell starts a loop in the background and exits at once:
	// the loop is an orphan, which exits once the test creates "release".
	w := shellWorkload(t, "orphans", `sh -c '(while [ ! -e release ]; do sleep 0.02; done) &'; echo ready; sleep 1000`, init)
	p, err := launch(w)
	if err != nil {
		t.Fatal(err)
	}
	c := criuReap(t, p)
	waitUntil(t, 10*time.Second, "the shell never printed ready", func() bool { return logHas(w, "ready") })
	kids := func() int { return len(childrenOf(nsProcs(t, p.Pid), p.Pid)) }
	waitUntil(t, 10*time.Second, "the orphan was never handed to the init", func() bool { return kids() == 2 })
	if err := os.WriteFile(filepath.Join(w.Dir, "release"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the orphan stays a child of the init (a zombie)", func() bool { return kids() == 1 })
	for _, q := range nsProcs(t, p.Pid) {
		if q.state == 'Z' {
			t.Errorf("a zombie in the workload's namespace: %+v", q)
		}
	}
	_ = p.Signal(syscall.SIGTERM)
	c.wait(t)
}

// TestInitFreezeStopsTheWholeWorkload: the fence's SIGSTOP to the
// workload's process group stops the shell and its command too, not only
// the init (they share its group), and the thaw resumes them all.
func TestInitFreezeStopsTheWholeWorkload(t *testing.T) {
	init := needInit(t)
	s, _ := startShell(t, init, 10*time.Second, `echo ready; while :; do sleep 0.02; done`)
	pid := s.PID("sh")
	if ids := s.Freeze(); len(ids) != 1 {
		t.Fatalf("froze %v, want [sh]", ids)
	}
	waitUntil(t, 10*time.Second, "a process of the frozen workload still runs", func() bool {
		procs := nsProcs(t, pid)
		return len(procs) >= 2 && !slices.ContainsFunc(procs, func(q nsProc) bool { return q.state != 'T' })
	})
	s.Thaw()
	waitUntil(t, 10*time.Second, "the thawed workload stays stopped", func() bool {
		return !slices.ContainsFunc(nsProcs(t, pid), func(q nsProc) bool { return q.state == 'T' })
	})
	if took := stopAll(s); took >= s.cfg.StopTimeout {
		t.Fatalf("the thawed workload took %v to stop", took)
	}
}

// TestInitRefusesOutsideItsNamespace: run anywhere but as PID 1 of a PID
// namespace (where forwarding to "every process" would mean the host's),
// the init runs nothing and says why.
func TestInitRefusesOutsideItsNamespace(t *testing.T) {
	if initBin == "" {
		criuSkipOrFail(t, "no workload init: %v (make deps installs gcc)", initBuildErr)
	}
	marker := filepath.Join(t.TempDir(), "ran")
	out, err := exec.Command(initBin, "--", "/bin/sh", "-c", "echo > "+marker).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 127 {
		t.Fatalf("exit %v, want status 127; output %q", err, out)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran")
	}
	if want := "must run as PID 1"; !strings.Contains(string(out), want) {
		t.Errorf("output %q does not say %q", out, want)
	}
}

// TestConfigInitMustBeAbsolute: CRIU restores the init by path, so a
// relative one (which would resolve against the agent's working
// directory) is refused by name.
func TestConfigInitMustBeAbsolute(t *testing.T) {
	cfg := DefaultConfig(t.TempDir())
	cfg.Store = testStore(t, cfg.DataDir)
	cfg.Init = "bin/lifeboat-init"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "Init") {
		t.Errorf("Validate() = %v, want an error naming Init", err)
	}
	cfg.Init = "/usr/local/bin/lifeboat-init"
	if err := cfg.Validate(); err != nil {
		t.Errorf("an absolute Init: %v", err)
	}
}
