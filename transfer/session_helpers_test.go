package transfer

import (
	"bytes"
	"context"
	"crypto/tls"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// testPKI is a cluster CA with the identities of two peers: "sender"
// (the client) and "receiver" (the server).
type testPKI struct {
	ca               *CA
	sender, receiver *Identity
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	now := time.Now()
	ca, err := NewCA("test", now)
	must(t, err)
	p := &testPKI{ca: ca}
	p.sender, err = ca.Issue("sender", RolePeer, now)
	must(t, err)
	p.receiver, err = ca.Issue("receiver", RolePeer, now)
	must(t, err)
	return p
}

// testLogger sends logs to the test's output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startServer starts a server on 127.0.0.1 for store, with cfg changed by
// edit (if not nil) and the hooks given, and closes it when the test
// ends.
func startServer(t testing.TB, p *testPKI, store *Store, edit func(*ServerConfig), hooks ...serverHooks) *Server {
	t.Helper()
	cfg := DefaultTestServerConfig()
	cfg.TLS = p.receiver.ServerTLS(ALPN)
	cfg.Store = store
	cfg.Logger = testLogger(t)
	if edit != nil {
		edit(&cfg)
	}
	s, err := NewServer(cfg)
	must(t, err)
	for _, h := range hooks {
		s.hooks = h
	}
	must(t, s.Start())
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close server: %v", err)
		}
	})
	return s
}

// newTestClient returns a client with the identity id (the sender's if
// nil), with cfg changed by edit (if not nil).
func newTestClient(t testing.TB, p *testPKI, id *Identity, edit func(*ClientConfig)) *Client {
	t.Helper()
	if id == nil {
		id = p.sender
	}
	cfg := DefaultTestClientConfig()
	cfg.TLS = func(peer string) *tls.Config { return id.ClientTLS(ALPN, peer) }
	cfg.Logger = testLogger(t)
	if edit != nil {
		edit(&cfg)
	}
	c, err := NewClient(cfg)
	must(t, err)
	return c
}

// fillRandom fills b from a fast PRNG seeded with seed.
func fillRandom(b []byte, seed uint64) {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	rand.NewChaCha8(s).Read(b)
}

// sealRandom seals in store a checkpoint of workload as seq whose files
// (name → size) hold random bytes from seed.
func sealRandom(t testing.TB, store *Store, workload string, seq uint64, files map[string]int, seed uint64) *Checkpoint {
	t.Helper()
	st, err := store.Stage(workload)
	must(t, err)
	defer st.Abort()
	i := uint64(0)
	for name, size := range files {
		b := make([]byte, size)
		fillRandom(b, seed*1000+i)
		i++
		p := filepath.Join(st.Dir, filepath.FromSlash(name))
		must(t, os.MkdirAll(filepath.Dir(p), 0o700))
		must(t, os.WriteFile(p, b, 0o600))
	}
	c, err := store.Seal(st, info(workload, seq))
	must(t, err)
	return c
}

// sameCheckpoint fails unless got (in the receiver's store) has want's
// digest, the same files with the same bytes, and verifies.
func sameCheckpoint(t testing.TB, rstore *Store, want *Checkpoint) {
	t.Helper()
	got, err := rstore.Get(want.Manifest.Workload, want.Manifest.Seq)
	if err != nil {
		t.Fatalf("receiver: %v", err)
	}
	if got.Digest != want.Digest {
		t.Fatalf("receiver holds digest %s, want %s", got.Digest, want.Digest)
	}
	if err := rstore.Verify(got, want.Digest); err != nil {
		t.Fatalf("receiver's copy does not verify: %v", err)
	}
	for _, f := range want.Manifest.Files {
		if f.IsDir() {
			continue
		}
		a, err := os.ReadFile(nativePath(want.FilesDir(), f.Path))
		must(t, err)
		b, err := os.ReadFile(nativePath(got.FilesDir(), f.Path))
		must(t, err)
		if !bytes.Equal(a, b) {
			t.Fatalf("%s differs", f.Path)
		}
	}
	wantManifest, err := os.ReadFile(filepath.Join(want.Dir, manifestName))
	must(t, err)
	gotManifest, err := os.ReadFile(filepath.Join(got.Dir, manifestName))
	must(t, err)
	if !bytes.Equal(wantManifest, gotManifest) {
		t.Fatal("manifest.json differs")
	}
}

// stagings lists what is under the store's staging directory.
func stagings(t testing.TB, s *Store) []string {
	t.Helper()
	des, err := os.ReadDir(filepath.Join(s.Root(), stagingName))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

// noStaging fails if anything is left under the store's staging
// directory.
func noStaging(t testing.TB, s *Store) {
	t.Helper()
	if names := stagings(t, s); len(names) > 0 {
		t.Fatalf("staging left behind: %v", names)
	}
}

// seqsOf returns the seqs Store.List shows for workload.
func seqsOf(t testing.TB, s *Store, workload string) []uint64 {
	t.Helper()
	list, err := s.List(workload)
	must(t, err)
	return seqs(list)
}

// noLeaks waits (up to 5 s) until no goroutine of quic-go or of this
// package is left but the caller's, and fails with their stacks if some
// stay.
func noLeaks(t testing.TB) {
	t.Helper()
	var left []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		left = ourGoroutines()
		if len(left) == 0 {
			return
		}
	}
	t.Fatalf("%d goroutines left:\n%s", len(left), strings.Join(left, "\n\n"))
}

// ourGoroutines returns the stacks of the goroutines, other than the
// caller's, that run code of quic-go or of this package (tests aside).
func ourGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 { // the caller
			continue
		}
		if strings.Contains(g, "quic-go/quic-go") || strings.Contains(g, "lifeboat/transfer.(*") {
			out = append(out, g)
		}
	}
	return out
}

// dirSize is the size of the regular files under dir.
func dirSize(t testing.TB, dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// background returns a context cancelled when the test ends.
func background(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// testQuietLogger drops logs below warnings (for benchmarks).
func testQuietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
