package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/internal/netns"
)

// TestSIGTERMCleansUp runs a one-host cluster in a child process (this
// test binary again), sends it SIGTERM and checks that the child died of
// the signal and left no namespace, no agent and no emulator behind.
func TestSIGTERMCleansUp(t *testing.T) {
	cfg := TestConfig(t, "jpt", "10.241.0", 1)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCluster$", "-test.v")
	cmd.Env = append(os.Environ(), "JEPSEN_CLUSTER_HELPER="+cfg.Bin)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "READY ") {
				ready <- strings.TrimPrefix(l, "READY ")
			}
		}
		close(ready)
	}()
	var pids string
	select {
	case pids = <-ready:
	case <-time.After(60 * time.Second):
		t.Fatal("the child's cluster did not form in 60 s")
	}
	agentPID, emuPID, _ := strings.Cut(pids, " ")
	if agentPID == "" || emuPID == "" {
		t.Fatalf("the child ended before its cluster formed (READY %q)", pids)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the child did not end within 30 s of SIGTERM")
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Errorf("the child ended with %v, want death by SIGTERM", err)
	}
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		if strings.Contains(e.Name(), fmt.Sprintf("-%d-", cmd.Process.Pid)) {
			t.Errorf("namespace %s outlived its creator's SIGTERM", e.Name())
		}
	}
	if _, err := os.Stat("/proc/" + agentPID); err == nil && netns.ProcState(atoi(agentPID)) != "Z" {
		t.Errorf("the agent (pid %s) outlived the harness's SIGTERM", agentPID)
	}
	if _, err := os.Stat("/proc/" + emuPID); err == nil && netns.ProcState(atoi(emuPID)) != "Z" {
		t.Errorf("the emulator (pid %s) outlived the harness's SIGTERM", emuPID)
	}
}

func atoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}

// TestHelperCluster is not a test: with JEPSEN_CLUSTER_HELPER=BIN it
// starts a one-host cluster, prints READY and the agent's and the
// emulator's PIDs, and waits
// to be signalled.
func TestHelperCluster(t *testing.T) {
	bin := os.Getenv("JEPSEN_CLUSTER_HELPER")
	if bin == "" {
		return
	}
	cfg := DefaultConfig()
	cfg.Hosts, cfg.Prefix, cfg.Subnet, cfg.Bin, cfg.Dir = 1, "jpt", "10.241.0", bin, t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Hosts[0].mu.Lock()
	pid := c.Hosts[0].cmd.Process.Pid
	c.Hosts[0].mu.Unlock()
	fmt.Printf("READY %d %d\n", pid, c.Hosts[0].Emu.Pid())
	time.Sleep(60 * time.Second)
}
