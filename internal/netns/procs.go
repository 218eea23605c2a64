package netns

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PIDs lists the live (not zombie) processes, other than this one, whose
// network namespace is the one bound at path.
func PIDs(path string) []int {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return nil
	}
	want := fmt.Sprintf("net:[%d]", st.Ino)
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid)); err != nil || link != want {
			continue
		}
		if ProcState(pid) == "Z" {
			continue // dead, not yet reaped
		}
		out = append(out, pid)
	}
	return out
}

// ProcState is the state letter of a process (R, S, T, Z …), "" if it is
// gone.
func ProcState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // comm may hold spaces and parentheses
	if i < 0 || i+2 >= len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

// KillAll is the host dying: SIGKILL to every process in the namespace at
// path, again until none is left (a dying process may have forked), at
// most 100 rounds of 20 ms. It returns the PIDs it killed.
func KillAll(path string) []int {
	var killed []int
	for range 100 {
		pids := PIDs(path)
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			if syscall.Kill(pid, syscall.SIGKILL) == nil && !slices.Contains(killed, pid) {
				killed = append(killed, pid)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return killed
}

// staleProcs kills what still runs in a stale namespace: workloads
// outlive a killed agent, and a namespace with processes in it lingers.
func staleProcs(name string) { KillAll(filepath.Join(runDir, name)) }
