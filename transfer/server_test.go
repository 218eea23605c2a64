package transfer

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestServerConfigValidate(t *testing.T) {
	p := newTestPKI(t)
	store := openStore(t, 0)
	good := func() ServerConfig {
		c := DefaultTestServerConfig()
		c.TLS, c.Store = p.receiver.ServerTLS(ALPN), store
		return c
	}
	for _, tc := range []struct {
		edit func(*ServerConfig)
		want string
	}{
		{func(c *ServerConfig) { c.Network = "udp" }, "Network"},
		{func(c *ServerConfig) { c.TLS = nil }, "needs TLS"},
		{func(c *ServerConfig) { c.Network = NetworkPlain }, "without TLS"},
		{func(c *ServerConfig) { c.TLS = p.sender.ClientTLS(ALPN, "") }, "client certificate"},
		{func(c *ServerConfig) { c.Addr = "" }, "Addr"},
		{func(c *ServerConfig) { c.Store = nil }, "Store"},
		{func(c *ServerConfig) { c.Logger = nil }, "Logger"},
		{func(c *ServerConfig) { c.MaxSessions = 0 }, "MaxSessions"},
		{func(c *ServerConfig) { c.ResumeTTL = 0 }, "ResumeTTL"},
		{func(c *ServerConfig) { c.IdleTimeout = time.Millisecond }, "IdleTimeout"},
	} {
		c := good()
		tc.edit(&c)
		if _, err := NewServer(c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want one naming %s", err, tc.want)
		}
	}
	c := good()
	if _, err := NewServer(c); err != nil {
		t.Errorf("good config: %v", err)
	}
}

func TestClientConfigValidate(t *testing.T) {
	p := newTestPKI(t)
	good := func() ClientConfig {
		c := DefaultTestClientConfig()
		c.TLS = func(peer string) *tls.Config { return p.sender.ClientTLS(ALPN, peer) }
		return c
	}
	for _, tc := range []struct {
		edit func(*ClientConfig)
		want string
	}{
		{func(c *ClientConfig) { c.Network = "" }, "Network"},
		{func(c *ClientConfig) { c.TLS = nil }, "needs TLS"},
		{func(c *ClientConfig) { c.Streams = 0 }, "Streams"},
		{func(c *ClientConfig) { c.Conns = 5 }, "Conns"},
		{func(c *ClientConfig) { c.Logger = nil }, "Logger"},
		{func(c *ClientConfig) { c.Retries = -1 }, "Retries"},
		{func(c *ClientConfig) { c.RetryBackoff = 0 }, "RetryBackoff"},
		{func(c *ClientConfig) { c.DialTimeout = 0 }, "DialTimeout"},
		{func(c *ClientConfig) { c.IdleTimeout = 0 }, "IdleTimeout"},
	} {
		c := good()
		tc.edit(&c)
		if _, err := NewClient(c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want one naming %s", err, tc.want)
		}
	}
}

// TestServerCloseMidTransfer: closing the server breaks the transfer off
// (retryable), stops every goroutine, and keeps what was received; a new
// server on the same store resumes from it.
func TestServerCloseMidTransfer(t *testing.T) {
	p := newTestPKI(t)
	src, dst := openStore(t, 0), openStore(t, 0)
	ck := sealRandom(t, src, "counter", 1, map[string]int{"pages.img": 64 * DefaultChunkSize}, 1)
	reached := make(chan struct{})
	srv := startServer(t, p, dst, nil, serverHooks{chunkWritten: func(n int64) {
		if n == 16 {
			close(reached)
		}
	}})
	cl := newTestClient(t, p, nil, func(c *ClientConfig) { c.Retries = 0 })
	sent := make(chan error, 1)
	go func() {
		_, err := cl.Send(background(t), srv.Addr().String(), "receiver", ck)
		sent <- err
	}()
	<-reached
	must(t, srv.Close())
	err := <-sent
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("err = %v, want ErrInterrupted", err)
	}
	t.Logf("send: %v", err)
	noLeaks(t)
	if got := seqsOf(t, dst, "counter"); len(got) != 0 {
		t.Fatalf("receiver lists %v", got)
	}
	if names := stagings(t, dst); len(names) != 1 || !strings.HasPrefix(names[0], recvPrefix) {
		t.Fatalf("staging %v, want one resumable", names)
	}

	// A restarted process opens the store again: the resumable staging
	// survives that, and the retry resumes from it.
	dst, err = OpenStore(dst.Root(), 0)
	must(t, err)
	srv2 := startServer(t, p, dst, nil)
	stats, err := cl.Send(background(t), srv2.Addr().String(), "receiver", ck)
	if err != nil {
		t.Fatal(err)
	}
	if !stats.Resumed || stats.ChunksSent > stats.Chunks-16 {
		t.Errorf("stats %+v: want a resume sending at most %d chunks", stats, stats.Chunks-16)
	}
	sameCheckpoint(t, dst, ck)
	noStaging(t, dst)
	must(t, srv2.Close())
	noLeaks(t)
}

// interrupted leaves a resumable staging of workload#1 in dst.
func interrupted(t *testing.T, p *testPKI, dst *Store, workload string) {
	t.Helper()
	src := openStore(t, 0)
	ck := sealRandom(t, src, workload, 1, map[string]int{"pages.img": 32 * DefaultChunkSize}, 1)
	reached := make(chan struct{})
	srv := startServer(t, p, dst, nil, serverHooks{chunkWritten: func(n int64) {
		if n == 4 {
			close(reached)
		}
	}})
	cl := newTestClient(t, p, nil, func(c *ClientConfig) { c.Retries = 0 })
	sent := make(chan error, 1)
	go func() {
		_, err := cl.Send(background(t), srv.Addr().String(), "receiver", ck)
		sent <- err
	}()
	<-reached
	must(t, srv.Close())
	if err := <-sent; !errors.Is(err, ErrInterrupted) {
		t.Fatalf("err = %v, want ErrInterrupted", err)
	}
}

func TestGCStaging(t *testing.T) {
	p := newTestPKI(t)
	dst := openStore(t, 0)
	interrupted(t, p, dst, "old")
	interrupted(t, p, dst, "fresh")
	interrupted(t, p, dst, "busy")
	srv := startServer(t, p, dst, func(c *ServerConfig) { c.ResumeTTL = time.Hour })
	now := time.Now()
	for _, w := range []string{"old", "busy"} {
		names, err := recvStagings(dst, w)
		must(t, err)
		must(t, touch(filepath.Join(dst.Root(), stagingName, names[0]), now.Add(-2*time.Hour)))
	}
	busy, err := recvStagings(dst, "busy")
	must(t, err)
	srv.mu.Lock()
	srv.byKey[busy[0]] = &recvSession{} // a live session uses it
	srv.mu.Unlock()

	removed, err := srv.gcStaging(now)
	must(t, err)
	old, _ := recvStagings(dst, "old")
	fresh, _ := recvStagings(dst, "fresh")
	stillBusy, _ := recvStagings(dst, "busy")
	if len(removed) != 1 || len(old) != 0 || len(fresh) != 1 || len(stillBusy) != 1 {
		t.Errorf("removed %v; left old %v, fresh %v, busy %v", removed, old, fresh, stillBusy)
	}
	srv.mu.Lock()
	delete(srv.byKey, busy[0])
	srv.mu.Unlock()
	if names := stagings(t, dst); len(names) != 2 {
		t.Errorf("staging holds %v, want fresh and busy only (no trash)", names)
	}
}

func TestDropStaging(t *testing.T) {
	p := newTestPKI(t)
	dst := openStore(t, 0)
	interrupted(t, p, dst, "keep")
	interrupted(t, p, dst, "drop")
	srv := startServer(t, p, dst, nil)
	must(t, srv.DropStaging("drop"))
	drop, _ := recvStagings(dst, "drop")
	keep, _ := recvStagings(dst, "keep")
	if len(drop) != 0 || len(keep) != 1 {
		t.Errorf("left drop %v, keep %v", drop, keep)
	}
	if err := srv.DropStaging("../x"); err == nil {
		t.Error("DropStaging accepted a bad workload id")
	}
}

// TestBusy: an offer beyond MaxSessions is told to come back later.
func TestBusy(t *testing.T) {
	p := newTestPKI(t)
	src, dst := openStore(t, 0), openStore(t, 0)
	ck1 := sealRandom(t, src, "one", 1, map[string]int{"pages.img": 8 * DefaultChunkSize}, 1)
	ck2 := sealRandom(t, src, "two", 1, map[string]int{"pages.img": 8 * DefaultChunkSize}, 2)
	reached, release := make(chan struct{}), make(chan struct{})
	srv := startServer(t, p, dst, func(c *ServerConfig) { c.MaxSessions = 1 }, serverHooks{chunkWritten: func(n int64) {
		if n == 1 {
			close(reached)
			<-release
		}
	}})
	cl := newTestClient(t, p, nil, func(c *ClientConfig) { c.Retries = 0 })
	sent := make(chan error, 1)
	go func() {
		_, err := cl.Send(background(t), srv.Addr().String(), "receiver", ck1)
		sent <- err
	}()
	<-reached
	_, err := cl.Send(background(t), srv.Addr().String(), "receiver", ck2)
	close(release)
	if !errors.Is(err, ErrInterrupted) || !strings.Contains(err.Error(), "busy") {
		t.Errorf("second send: %v, want ErrInterrupted saying busy", err)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	sameCheckpoint(t, dst, ck1)
	if _, err := os.Stat(filepath.Join(dst.Root(), "two")); !os.IsNotExist(err) {
		t.Errorf("workload two has a directory: %v", err)
	}
}
