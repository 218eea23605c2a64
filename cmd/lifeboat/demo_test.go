package main

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/load"
)

// TestDemoStory runs `lifeboat demo` as make demo does (CRIU where the
// host can, app mode otherwise): it must end with its report, the counter
// moved, no request failed and the count continued.
func TestDemoStory(t *testing.T) {
	if testing.Short() {
		t.Skip("a whole local cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, testBin, "demo", "--rate", "100", "--notice-after", "2s", "--load", "6s")
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatalf("demo: %v", err)
	}
	for _, want := range []string{"lifeboat demo — report", "moved        demo-1", "errors       0 failed, 0 answered 503",
		"count        continued:", "stopping the peers"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q", want)
		}
	}
}

func TestDemoReportVerdict(t *testing.T) {
	ok := &demoReport{To: "demo-2", Warm: 1, Count: 11, Load: &load.Result{OK: 10}}
	if err := ok.verdict(); err != nil {
		t.Fatalf("a good story failed: %v", err)
	}
	for name, r := range map[string]*demoReport{
		"not moved":  {Warm: 1, Count: 11, Load: &load.Result{OK: 10}},
		"failed":     {To: "demo-2", Warm: 1, Count: 11, Load: &load.Result{OK: 10, Failed: 1}},
		"503":        {To: "demo-2", Warm: 1, Count: 11, Load: &load.Result{OK: 10, Backpressure: 1}},
		"lost count": {To: "demo-2", Warm: 1, Count: 10, Load: &load.Result{OK: 10}},
		"twice":      {To: "demo-2", Warm: 1, Count: 12, Load: &load.Result{OK: 10}},
	} {
		if err := r.verdict(); !errors.Is(err, errDemoFailed) {
			t.Errorf("%s: verdict %v, want errDemoFailed", name, err)
		}
	}
}

func TestDemoFlagsRejected(t *testing.T) {
	for _, args := range [][]string{{"--mode", "vm"}, {"--rate", "0"}, {"--load", "2s"}} {
		out, err := exec.Command(testBin, append([]string{"demo"}, args...)...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("demo %v: %v, want exit 2 (usage)\n%s", args, err, out)
		}
	}
}
