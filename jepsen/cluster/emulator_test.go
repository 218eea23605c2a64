package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEmulatorProcess runs each cloud's `lifeboat emulate` on loopback as
// the cluster does (no namespace needed), gives it a notice and takes it
// back over HTTP, and checks that Close ends the process.
func TestEmulatorProcess(t *testing.T) {
	bin := testBin(t)
	cfg := DefaultConfig()
	for i, cl := range cfg.Clouds {
		t.Run(cl, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			spec := cfg.emulatorSpec(i, fmt.Sprintf("h%d", i+1))
			logPath := filepath.Join(t.TempDir(), "emulator.log")
			e, err := startEmulator(bin, spec.args(), "127.0.0.1:0", logPath)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			if !strings.HasPrefix(e.Base, "http://127.0.0.1:") {
				t.Fatalf("base %q from %q", e.Base, e.Env)
			}
			st, err := e.State(ctx)
			if err != nil || st.Cloud != cl || st.Zone != spec.Zone || len(st.Notices) != 0 {
				t.Fatalf("state %+v %v, want cloud %s zone %s and no notice", st, err, cl, spec.Zone)
			}
			deadline := time.Now().Add(10 * time.Second)
			if err := e.Notice(ctx, NoticePreempt, deadline); err != nil {
				t.Fatal(err)
			}
			st, err = e.State(ctx)
			if err != nil || len(st.Notices) != 1 || !st.Notices[0].Active || st.Notices[0].Kind != NoticePreempt {
				t.Fatalf("after the notice: %+v %v", st, err)
			}
			if d := st.Notices[0].Deadline.Sub(deadline).Abs(); d > time.Second {
				t.Errorf("deadline %v, want %v (off by %v)", st.Notices[0].Deadline, deadline, d)
			}
			if err := e.Notice(ctx, "bogus", deadline); err == nil || !strings.Contains(err.Error(), "400") {
				t.Errorf("a bogus kind: %v, want the emulator's 400", err)
			}
			if err := e.Reset(ctx); err != nil {
				t.Fatal(err)
			}
			if st, err = e.State(ctx); err != nil || len(st.Notices) != 0 {
				t.Fatalf("after Reset: %+v %v", st, err)
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			if err := e.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", e.Pid())); e.Running() || err == nil {
				t.Errorf("the emulator (pid %d) still runs after Close", e.Pid())
			}
			if b, _ := os.ReadFile(logPath); !strings.Contains(string(b), "emulating") {
				t.Errorf("the log has no start line:\n%s", b)
			}
		})
	}
}

// TestEmulatorExitsEarly: a binary that refuses the arguments is reported
// with its log, not waited on.
func TestEmulatorExitsEarly(t *testing.T) {
	bin := testBin(t)
	logPath := filepath.Join(t.TempDir(), "emulator.log")
	_, err := startEmulator(bin, []string{"oracle"}, "127.0.0.1:0", logPath)
	if err == nil || !strings.Contains(err.Error(), "exited before it served") {
		t.Fatalf("startEmulator with a bad cloud: %v", err)
	}
	if b, _ := os.ReadFile(logPath); !strings.Contains(string(b), "oracle") {
		t.Errorf("the log does not show the binary's complaint:\n%s", b)
	}
}
