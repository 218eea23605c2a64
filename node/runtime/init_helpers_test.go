package runtime

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// initBin is cmd/lifeboat-init, built once for the package's tests as make
// build builds it (static, with the C compiler deps.sh installs); "" with
// initBuildErr when it could not be built.
var (
	initBin      string
	initBuildErr error
)

// buildInit compiles cmd/lifeboat-init into dir.
func buildInit(dir string) (string, error) {
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	bin := filepath.Join(dir, "lifeboat-init")
	out, err := exec.Command(cc, "-static", "-Os", "-s", "-Wall", "-Wextra", "-Werror", "-o", bin,
		"../../cmd/lifeboat-init/lifeboat-init.c").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building cmd/lifeboat-init with %s: %v: %s", cc, err, out)
	}
	return bin, nil
}

// needInit returns the workload init, or skips (fails under CI) when it
// cannot run here: it needs root (a PID namespace) and a C compiler.
func needInit(tb testing.TB) string {
	tb.Helper()
	if os.Geteuid() != 0 {
		criuSkipOrFail(tb, "the workload init needs root (a PID namespace of its own)")
	}
	if initBin == "" {
		criuSkipOrFail(tb, "no workload init: %v (make deps installs gcc)", initBuildErr)
	}
	return initBin
}

// nsProc is one process of a workload's PID namespace, seen from here.
type nsProc struct {
	pid, ppid int
	state     byte
	comm      string
}

// nsProcs lists the processes in the PID namespace whose init is the host
// PID init (the init among them).
func nsProcs(tb testing.TB, init int) []nsProc {
	tb.Helper()
	want, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", init))
	if err != nil {
		tb.Fatalf("the workload's init %d: %v", init, err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		tb.Fatal(err)
	}
	var out []nsProc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); err != nil || ns != want {
			continue
		}
		if p, ok := readProcStat(pid); ok {
			out = append(out, p)
		}
	}
	return out
}

// readProcStat reads pid's parent, state and name; false once it is gone.
func readProcStat(pid int) (nsProc, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nsProc{}, false
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return nsProc{}, false
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 2 {
		return nsProc{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	return nsProc{pid: pid, ppid: ppid, state: f[0][0], comm: s[open+1 : end]}, true
}

// childrenOf lists the processes in procs whose parent is pid.
func childrenOf(procs []nsProc, pid int) []nsProc {
	var out []nsProc
	for _, p := range procs {
		if p.ppid == pid {
			out = append(out, p)
		}
	}
	return out
}

// waitUntil polls cond until it holds, or fails the test with what after
// d: the conditions are states of real processes, which change on their
// own time.
func waitUntil(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("after %v: %s", d, what)
		}
	}
}

// logHas reports whether w's log holds s.
func logHas(w Workload, s string) bool {
	b, _ := os.ReadFile(w.LogPath())
	return strings.Contains(string(b), s)
}

// shellWorkload is `sh -c script` in a fresh directory, under init.
func shellWorkload(tb testing.TB, id, script, init string) Workload {
	w := Workload{Dir: tb.TempDir(), Epoch: 1, Init: init}
	w.Spec.ID, w.Spec.Command = id, []string{"/bin/sh", "-c", script}
	return w
}
