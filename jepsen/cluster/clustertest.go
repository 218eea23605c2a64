package cluster

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Require skips the test when root, ip, nsenter or nft is missing, except
// under CI=true, where that is a failure.
func Require(t testing.TB) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root (network namespaces)"
	}
	for _, tool := range []string{"ip", "nsenter", "nft"} {
		if _, err := exec.LookPath(tool); err != nil && why == "" {
			why = "needs " + tool + " on PATH"
		}
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true: %s", why)
	}
	t.Skip(why)
}

// TestConfig is a config for tests: hosts hosts on subnet with label
// prefix, a lease TTL of 3 s, data under t.TempDir(), logs into t.Log,
// and the agent built from this module (or $LIFEBOAT_BIN). It calls
// Require.
func TestConfig(t testing.TB, prefix, subnet string, hosts int) Config {
	t.Helper()
	Require(t)
	cfg := DefaultConfig()
	cfg.Hosts, cfg.Prefix, cfg.Subnet = hosts, prefix, subnet
	cfg.Dir = t.TempDir()
	cfg.Bin = testBin(t)
	cfg.AgentArgs = []string{"--lease-ttl", "3s"}
	cfg.Logger = slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return cfg
}

// testBin is $LIFEBOAT_BIN, or the binary built from this module.
func testBin(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("LIFEBOAT_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "lifeboat")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/lifeboat/lifeboat/cmd/lifeboat").CombinedOutput()
	if err != nil {
		t.Fatalf("building the agent: %v\n%s", err, out)
	}
	return bin
}

// tWriter sends log lines to t.Log.
type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// DumpOnFailure logs the last 60 lines of every agent's log and the last
// 20 of its emulator's if t failed. Call it deferred, before Close.
func DumpOnFailure(t testing.TB, c *Cluster) {
	if !t.Failed() {
		return
	}
	for _, h := range c.Hosts {
		t.Logf("---- %s (%s) ----\n%s", h.Name, h.LogPath(), tail(h.LogPath(), 60))
		t.Logf("---- %s's emulator (%s) ----\n%s", h.Name, h.EmulatorLogPath(), tail(h.EmulatorLogPath(), 20))
	}
}

// tail is the last n lines of the file at path.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(string(b), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
