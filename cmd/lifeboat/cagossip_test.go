package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lifeboat/lifeboat/gossip"
)

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, stderr := run(t, nil, args...)
	if code != 0 {
		t.Fatalf("%s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	return stderr
}

func readKey(t *testing.T, path string) []byte {
	t.Helper()
	k, err := gossip.ReadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestCAMakesAndHandsOutTheGossipKey(t *testing.T) {
	caDir := filepath.Join(t.TempDir(), "ca")
	mustRun(t, "ca", "init", "--dir", caDir)
	caKey := filepath.Join(caDir, gossip.KeyFile)
	key := readKey(t, caKey)
	if len(key) != 32 || mode(t, caKey) != 0o600 {
		t.Fatalf("CA gossip key: %d bytes, mode %v; want 32 bytes, 0600", len(key), mode(t, caKey))
	}
	if code, stderr := run(t, nil, "ca", "init", "--dir", caDir); code == 0 || !strings.Contains(stderr, "not overwriting") {
		t.Fatalf("second ca init: exit %d: %s", code, stderr)
	}
	if !bytes.Equal(readKey(t, caKey), key) {
		t.Fatal("a refused ca init replaced the gossip key")
	}

	peer := filepath.Join(t.TempDir(), "n1")
	mustRun(t, "ca", "issue", "n1", "--ca", caDir, "--out", peer)
	if got := readKey(t, filepath.Join(peer, gossip.KeyFile)); !bytes.Equal(got, key) || mode(t, filepath.Join(peer, gossip.KeyFile)) != 0o600 {
		t.Fatalf("the peer's gossip.key: mode %v, same key %v; want 0600 and the CA's key", mode(t, filepath.Join(peer, gossip.KeyFile)), bytes.Equal(got, key))
	}
	client := filepath.Join(t.TempDir(), "ops")
	mustRun(t, "ca", "issue", "ops", "--ca", caDir, "--out", client, "--role", "client")
	if _, err := os.Stat(filepath.Join(client, gossip.KeyFile)); !os.IsNotExist(err) {
		t.Fatalf("a client certificate came with the gossip key (%v)", err)
	}
}

func TestCAInitRefusesAStrayGossipKey(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, gossip.KeyFile), []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, stderr := run(t, nil, "ca", "init", "--dir", dir); code != 1 || !strings.Contains(stderr, "not overwriting a gossip key") {
		t.Fatalf("ca init over a gossip key: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "ca.crt")); !os.IsNotExist(err) {
		t.Fatal("a refused ca init wrote a CA")
	}
}

// TestOldCAWithoutGossipKey: a CA made before gossip keys still issues,
// says how to make a key, and `ca gossip-key` makes one.
func TestOldCAWithoutGossipKey(t *testing.T) {
	caDir := filepath.Join(t.TempDir(), "ca")
	mustRun(t, "ca", "init", "--dir", caDir)
	caKey := filepath.Join(caDir, gossip.KeyFile)
	if err := os.Remove(caKey); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "n1")
	stderr := mustRun(t, "ca", "issue", "n1", "--ca", caDir, "--out", out)
	if !strings.Contains(stderr, "lifeboat ca gossip-key --dir "+caDir) {
		t.Fatalf("ca issue with an old CA says %q; want how to make a gossip key", stderr)
	}
	if _, err := os.Stat(filepath.Join(out, gossip.KeyFile)); !os.IsNotExist(err) {
		t.Fatalf("a gossip.key appeared from nowhere (%v)", err)
	}
	code, stderr := run(t, nil, "agent", "--name", "n1", "--data-dir", t.TempDir(), "--tls-dir", out)
	if code != 2 || !strings.Contains(stderr, "no gossip key") || !strings.Contains(stderr, "lifeboat ca gossip-key --dir CA") {
		t.Fatalf("agent without a gossip key: exit %d: %s", code, stderr)
	}

	mustRun(t, "ca", "gossip-key", "--dir", caDir)
	first := readKey(t, caKey)
	if mode(t, caKey) != 0o600 {
		t.Errorf("gossip-key made mode %v, want 0600", mode(t, caKey))
	}
	if code, stderr := run(t, nil, "ca", "gossip-key", "--dir", caDir); code != 2 || !strings.Contains(stderr, "--replace") {
		t.Fatalf("gossip-key over a key: exit %d: %s", code, stderr)
	}
	mustRun(t, "ca", "gossip-key", "--dir", caDir, "--replace")
	if bytes.Equal(readKey(t, caKey), first) {
		t.Fatal("--replace kept the old key")
	}
	if code, stderr := run(t, nil, "ca", "gossip-key", "--dir", t.TempDir()); code != 2 || !strings.Contains(stderr, "holds no CA") {
		t.Fatalf("gossip-key without a CA: exit %d: %s", code, stderr)
	}
}

func TestGossipKeysCLIRefusesBadInput(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "k")
	if err := os.WriteFile(keyFile, []byte("c2hvcnQ=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"gossip", "keys", "install"}, "--file"},
		{[]string{"gossip", "keys", "install", "c2hvcnQ="}, "KEY"},
		{[]string{"gossip", "keys", "install", "--file", keyFile}, "--file"},
		{[]string{"gossip", "keys", "install", "--file", keyFile, "AAAA"}, "not both"},
		{[]string{"gossip", "keys", "use", "xyz"}, "fingerprint"},
		{[]string{"gossip", "keys", "remove"}, "accepts 1 arg"},
	} {
		code, stderr := run(t, nil, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %q; want exit 2 naming %q", c.args, code, stderr, c.want)
		}
		if strings.Contains(stderr, "c2hvcnQ=") {
			t.Errorf("%v: the error shows the key: %s", c.args, stderr)
		}
	}
}
