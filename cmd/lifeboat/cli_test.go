package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/transfer"
)

// run executes the binary and returns its exit code and stderr.
func run(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(testBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), stderr.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, stderr.String()
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBadInputFailsClearly(t *testing.T) {
	dataDir := t.TempDir()
	caDir := filepath.Join(t.TempDir(), "ca")
	if code, stderr := run(t, nil, "ca", "init", "--dir", caDir); code != 0 {
		t.Fatalf("ca init: exit %d: %s", code, stderr)
	}
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"unknown flag", nil, []string{"agent", "--no-such-flag"}, "unknown flag: --no-such-flag"},
		{"bad flag value", nil, []string{"agent", "--voters", "three"}, "--voters"},
		{"unsupported voters", nil, []string{"agent", "--voters", "4", "--data-dir", dataDir}, "voters: 4"},
		{"malformed config", nil, []string{"agent", "--config", writeFile(t, "bad.yaml", "name: [unclosed\n")}, "not valid YAML"},
		{"unknown config key", nil, []string{"agent", "--config", writeFile(t, "typo.yaml", "bootstrap-expekt: 3\n")}, "unknown key(s) bootstrap-expekt"},
		{"bad env value", []string{"LIFEBOAT_HTTP_PORT=http"}, []string{"agent"}, "LIFEBOAT_HTTP_PORT"},
		{"bad cloud", nil, []string{"agent", "--cloud", "oracle", "--data-dir", dataDir}, "--cloud \"oracle\""},
		{"bad gossip key", nil, []string{"agent", "--gossip-key", "c2hvcnQ=", "--data-dir", dataDir}, "--gossip-key 1"},
		{"clashing ports", nil, []string{"agent", "--http-port", "7947", "--data-dir", dataDir}, "raft-port and http-port"},
		{"no certificate", nil, []string{"agent", "--name", "n1", "--data-dir", dataDir}, "lifeboat ca issue n1"},
		{"ca issue without ca", nil, []string{"ca", "issue", "n1", "--ca", filepath.Join(dataDir, "none")}, "lifeboat ca init"},
		{"ca issue bad role", nil, []string{"ca", "issue", "n1", "--ca", caDir, "--role", "admin", "--out", filepath.Join(t.TempDir(), "x")}, "role \"admin\""},
		{"bad spec file", nil, []string{"workload", "submit", writeFile(t, "spec.yaml", "id: x\ncomand: [a]\n")}, "field comand not found"},
		{"bad addr", nil, []string{"status", "--addr", "127.0.0.1:7949"}, "not an http(s) URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stderr := run(t, c.env, c.args...)
			if code != 2 || !strings.Contains(stderr, c.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 and %q", code, stderr, c.want)
			}
		})
	}
	if entries, _ := os.ReadDir(dataDir); len(entries) != 0 {
		t.Fatalf("refused starts wrote to the data dir: %v", entries)
	}
}

func TestCACommands(t *testing.T) {
	caDir := filepath.Join(t.TempDir(), "ca")
	if code, stderr := run(t, nil, "ca", "init", "--dir", caDir, "--name", "prod"); code != 0 {
		t.Fatalf("ca init: exit %d: %s", code, stderr)
	}
	if code, stderr := run(t, nil, "ca", "init", "--dir", caDir); code != 1 || !strings.Contains(stderr, "not overwriting") {
		t.Fatalf("second ca init: exit %d: %s", code, stderr)
	}
	out := filepath.Join(t.TempDir(), "n1")
	if code, stderr := run(t, nil, "ca", "issue", "n1", "--ca", caDir, "--out", out); code != 0 {
		t.Fatalf("ca issue: exit %d: %s", code, stderr)
	}
	id, err := transfer.LoadIdentity(out, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if id.Name != "n1" || id.Role != transfer.RolePeer {
		t.Fatalf("issued %s/%s", id.Name, id.Role)
	}
	// An agent refuses a certificate that names another node.
	if code, stderr := run(t, nil, "agent", "--name", "n2", "--data-dir", t.TempDir(), "--tls-dir", out); code != 2 || !strings.Contains(stderr, "names n1, but this node is n2") {
		t.Fatalf("agent with n1's certificate as n2: exit %d: %s", code, stderr)
	}
}
