package transfer

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mustCA(t *testing.T, name string) *CA {
	t.Helper()
	ca, err := NewCA(name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func mustIssue(t *testing.T, ca *CA, name, role string) *Identity {
	t.Helper()
	id, err := ca.Issue(name, role, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestCASaveLoadIssue(t *testing.T) {
	dir := t.TempDir()
	ca := mustCA(t, "prod")
	if err := ca.Save(dir); err != nil {
		t.Fatal(err)
	}
	if err := ca.Save(dir); err == nil || !strings.Contains(err.Error(), "not overwriting") {
		t.Fatalf("second Save = %v, want a refusal to overwrite", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, CAKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("ca.key mode: %v %v", fi, err)
	}
	loaded, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	id := mustIssue(t, loaded, "n1", RolePeer)
	out := filepath.Join(t.TempDir(), "n1")
	if err := id.Save(out); err != nil {
		t.Fatal(err)
	}
	got, err := LoadIdentity(out, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "n1" || got.Role != RolePeer {
		t.Fatalf("loaded %s/%s", got.Name, got.Role)
	}
	if _, err := LoadIdentity(out, time.Now().Add(CertValidity+48*time.Hour)); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("expired identity loaded: %v", err)
	}
	if _, err := LoadIdentity(t.TempDir(), time.Now()); err == nil || !strings.Contains(err.Error(), "lifeboat ca init") {
		t.Fatalf("empty dir: %v", err)
	}
	// A key that belongs to another certificate is caught.
	other := mustIssue(t, loaded, "n2", RolePeer)
	odir := filepath.Join(t.TempDir(), "n2")
	if err := other.Save(odir); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(odir, NodeKeyFile))
	if err := os.WriteFile(filepath.Join(out, NodeKeyFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadIdentity(out, time.Now()); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("mismatched key: %v", err)
	}
}

func TestIssueRejectsBadInput(t *testing.T) {
	ca := mustCA(t, "prod")
	for _, c := range []struct{ name, role string }{{"", RolePeer}, {"a/b", RolePeer}, {"n1", "admin"}} {
		if _, err := ca.Issue(c.name, c.role, time.Now()); err == nil {
			t.Errorf("Issue(%q, %q) accepted", c.name, c.role)
		}
	}
}

// handshake runs a TLS handshake over a pipe and returns both sides' errors.
func handshake(t *testing.T, server, client *tls.Config) (srvErr, cliErr error, peer string) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	done := make(chan error, 1)
	var name string
	go func() {
		s := tls.Server(a, server)
		err := s.Handshake()
		if err == nil {
			name, _, err = PeerName(s.ConnectionState())
		}
		a.Close()
		done <- err
	}()
	c := tls.Client(b, client)
	cliErr = c.Handshake()
	b.Close()
	srvErr = <-done
	return srvErr, cliErr, name
}

func TestMutualTLS(t *testing.T) {
	ca := mustCA(t, "prod")
	n1, n2 := mustIssue(t, ca, "n1", RolePeer), mustIssue(t, ca, "n2", RolePeer)
	srv := n1.ServerTLS(ALPN)

	if se, ce, peer := handshake(t, srv, n2.ClientTLS(ALPN, "n1")); se != nil || ce != nil || peer != "n2" {
		t.Fatalf("peer handshake: server %v, client %v, peer %q", se, ce, peer)
	}

	stranger := mustIssue(t, mustCA(t, "other"), "n3", RolePeer)
	// The stranger trusts anything, so that the server's check is what is tested.
	lax := &tls.Config{Certificates: []tls.Certificate{stranger.Cert}, InsecureSkipVerify: true, NextProtos: []string{ALPN}, MinVersion: tls.VersionTLS13}
	if se, _, _ := handshake(t, srv, lax); !errors.Is(se, ErrUntrusted) {
		t.Errorf("certificate of another CA: server error %v, want ErrUntrusted", se)
	}
	if _, ce, _ := handshake(t, stranger.ServerTLS(ALPN), n2.ClientTLS(ALPN, "n3")); !errors.Is(ce, ErrUntrusted) {
		t.Errorf("server of another CA: client error %v, want ErrUntrusted", ce)
	}

	noCert := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{ALPN}, MinVersion: tls.VersionTLS13}
	if se, _, _ := handshake(t, srv, noCert); se == nil || !strings.Contains(se.Error(), "certificate") {
		t.Errorf("client without certificate: server error %v", se)
	}

	op := mustIssue(t, ca, "alice", RoleClient)
	laxOp := &tls.Config{Certificates: []tls.Certificate{op.Cert}, InsecureSkipVerify: true, NextProtos: []string{ALPN}, MinVersion: tls.VersionTLS13}
	if se, _, _ := handshake(t, srv, laxOp); !errors.Is(se, ErrUntrusted) || !strings.Contains(se.Error(), "role peer") {
		t.Errorf("client-role certificate on a peer link: %v", se)
	}

	if _, ce, _ := handshake(t, srv, n2.ClientTLS(ALPN, "n9")); !errors.Is(ce, ErrUntrusted) || !strings.Contains(ce.Error(), "expected n9") {
		t.Errorf("server with the wrong name: %v", ce)
	}
}
