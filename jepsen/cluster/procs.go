package cluster

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lifeboat/lifeboat/internal/netns"
)

// nsPIDs lists the live (not zombie) processes whose network namespace is
// the one at path.
func nsPIDs(path string) []int {
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
		if procState(pid) == "Z" {
			continue // dead, not yet reaped
		}
		out = append(out, pid)
	}
	return out
}

// procState is the state letter of a process (R, S, T, Z …), "" if gone.
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

// killAll sends SIGKILL to every process in the namespace at path, again
// until none is left (a dying agent may have forked), at most 100 rounds
// of 20 ms. It returns how many distinct processes it killed.
func killAll(path string) int {
	var killed []int
	for range 100 {
		pids := nsPIDs(path)
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
	return len(killed)
}

// cleanupStale removes what a crashed run with this label prefix left:
// for each namespace whose creator is gone, first every process still in
// it (workloads outlive a killed agent), then the namespace itself.
func cleanupStale(label string) ([]string, error) {
	prefix := netns.Prefix + label
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, prefix) && !creatorAlive(n) {
			killAll("/run/netns/" + n)
		}
	}
	return netns.CleanupStale(prefix)
}

// creatorAlive mirrors netns's rule: the PID in …-<pid>-<random>.
func creatorAlive(name string) bool {
	parts := strings.Split(name, "-")
	if len(parts) < 3 {
		return true
	}
	pid, err := strconv.Atoi(parts[len(parts)-2])
	if err != nil || pid <= 0 {
		return true
	}
	err = syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}
