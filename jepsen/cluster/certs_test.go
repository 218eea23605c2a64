package cluster

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCerts makes the CA with the binary (twice: the second keeps the
// first) and issues a host's certificate where --tls-dir will read it.
func TestCerts(t *testing.T) {
	bin, dir := testBin(t), t.TempDir()
	ca := filepath.Join(dir, "ca")
	if err := initCA(bin, ca); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(filepath.Join(ca, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := initCA(bin, ca); err != nil {
		t.Fatalf("initCA over an existing CA: %v", err)
	}
	if again, _ := os.ReadFile(filepath.Join(ca, "ca.crt")); string(again) != string(first) {
		t.Error("the second initCA replaced the CA")
	}
	out := filepath.Join(dir, "tls", "h1")
	if err := issueCert(bin, ca, "h1", "10.0.0.1", out); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ca.crt", "node.crt", "node.key", "gossip.key"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("issued files: %v", err)
		}
	}
	if err := issueCert(bin, filepath.Join(dir, "none"), "h2", "10.0.0.2", filepath.Join(dir, "tls", "h2")); err == nil {
		t.Error("issueCert without a CA succeeded")
	}
}
