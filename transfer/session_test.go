package transfer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// sealFiles seals in store a checkpoint of workload as seq with exactly
// these files (a name ending in "/" is a directory).
func sealFiles(t testing.TB, store *Store, workload string, seq uint64, files map[string][]byte) *Checkpoint {
	t.Helper()
	st, err := store.Stage(workload)
	must(t, err)
	defer st.Abort()
	for name, b := range files {
		p := filepath.Join(st.Dir, filepath.FromSlash(strings.TrimSuffix(name, "/")))
		if strings.HasSuffix(name, "/") {
			must(t, os.MkdirAll(p, 0o700))
			continue
		}
		must(t, os.MkdirAll(filepath.Dir(p), 0o700))
		must(t, os.WriteFile(p, b, 0o600))
	}
	c, err := store.Seal(st, info(workload, seq))
	must(t, err)
	return c
}

// randomBytes returns n bytes from seed.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	fillRandom(b, seed)
	return b
}

// sampleFiles is a small checkpoint tree: a multi-chunk file with a short
// last chunk, small and empty files, nested and empty directories.
func sampleFiles(seed uint64) map[string][]byte {
	return map[string][]byte{
		"pages-1.img":    randomBytes(3*DefaultChunkSize+17, seed),
		"inventory.img":  randomBytes(100, seed+1),
		"state/":         nil,
		"state/db":       randomBytes(DefaultChunkSize, seed+2),
		"state/empty":    {},
		"state/wal/":     nil,
		"state/wal/0001": randomBytes(5000, seed+3),
		"empty-dir/":     nil,
	}
}

func TestSendRoundTrip(t *testing.T) {
	p := newTestPKI(t)
	for _, network := range []string{NetworkQUIC, NetworkTCP, NetworkPlain} {
		t.Run(network, func(t *testing.T) {
			src, dst := openStore(t, 0), openStore(t, 0)
			ck := sealFiles(t, src, "counter", 1, sampleFiles(1))
			srv := startServer(t, p, dst, func(c *ServerConfig) {
				c.Network = network
				if network == NetworkPlain {
					c.TLS = nil
				}
			})
			cl := newTestClient(t, p, nil, func(c *ClientConfig) {
				c.Network = network
				if network == NetworkPlain {
					c.TLS = nil
				}
			})
			stats, err := cl.Send(background(t), srv.Addr().String(), "receiver", ck)
			if err != nil {
				t.Fatal(err)
			}
			sameCheckpoint(t, dst, ck)
			noStaging(t, dst)
			n := len(chunkSet(ck.Manifest))
			want := SendStats{Chunks: n, Bytes: ck.Manifest.Bytes(), ChunksSent: n, BytesSent: ck.Manifest.Bytes(), Attempts: 1}
			stats.Took, stats.DataTook = 0, 0
			if stats != want {
				t.Errorf("stats %+v, want %+v", stats, want)
			}
		})
	}
}

// TestSendIsIdempotent: a second send of a sealed checkpoint sends
// nothing; the server's Received hook hears of both.
func TestSendIsIdempotent(t *testing.T) {
	p := newTestPKI(t)
	src, dst := openStore(t, 0), openStore(t, 0)
	ck := sealFiles(t, src, "counter", 1, sampleFiles(1))
	heard := make(chan string, 4)
	srv := startServer(t, p, dst, func(c *ServerConfig) {
		c.Received = func(peer, workload string, seq uint64, digest string) {
			heard <- fmt.Sprintf("%s %s#%d %s", peer, workload, seq, digest)
		}
	})
	cl := newTestClient(t, p, nil, nil)
	for i := range 2 {
		stats, err := cl.Send(background(t), srv.Addr().String(), "receiver", ck)
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if i == 1 && (stats.ChunksSent != 0 || stats.Attempts != 1) {
			t.Errorf("resend: %+v, want nothing sent in one attempt", stats)
		}
	}
	sameCheckpoint(t, dst, ck)
	if got := seqsOf(t, dst, "counter"); len(got) != 1 {
		t.Errorf("receiver lists %v", got)
	}
	want := fmt.Sprintf("sender counter#1 %s", ck.Digest)
	for i := range 2 { // told after the client: it may come a moment later
		select {
		case got := <-heard:
			if got != want {
				t.Errorf("Received heard %q, want %q", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Received heard %d of the 2 sends", i)
		}
	}
}

// TestSendDelta: the receiver holds checkpoint 1; checkpoint 2 differs in
// three bytes, so only the few chunks holding them travel.
func TestSendDelta(t *testing.T) {
	p := newTestPKI(t)
	src, dst := openStore(t, 0), openStore(t, 0)
	files := sampleFiles(1)
	ck1 := sealFiles(t, src, "counter", 1, files)
	srv := startServer(t, p, dst, nil)
	cl := newTestClient(t, p, nil, nil)
	if _, err := cl.Send(background(t), srv.Addr().String(), "receiver", ck1); err != nil {
		t.Fatal(err)
	}
	pages := append([]byte(nil), files["pages-1.img"]...)
	pages[5] ^= 1                     // chunk 0
	pages[2*DefaultChunkSize+9] ^= 1  // chunk 2
	pages[3*DefaultChunkSize+16] ^= 1 // chunk 3, the short last one
	files["pages-1.img"] = pages
	ck2 := sealFiles(t, src, "counter", 2, files)
	stats, err := cl.Send(background(t), srv.Addr().String(), "receiver", ck2)
	if err != nil {
		t.Fatal(err)
	}
	newN, newBytes := newChunks(ck1.Manifest, ck2.Manifest)
	if stats.ChunksSent != newN || stats.BytesSent != newBytes || stats.Resumed || newN > 6 {
		t.Errorf("stats %+v: want the %d new chunks (%d bytes) sent, not resumed", stats, newN, newBytes)
	}
	sameCheckpoint(t, dst, ck2)
	if got := seqsOf(t, dst, "counter"); len(got) != 2 || got[1] != 2 {
		t.Errorf("receiver lists %v, want [1 2]", got)
	}
	noStaging(t, dst)
}

// TestSendDuplicateAndZeroChunks: chunks of zeros are not sent, and a
// chunk repeated in the checkpoint is sent once.
func TestSendDuplicateAndZeroChunks(t *testing.T) {
	p := newTestPKI(t)
	src, dst := openStore(t, 0), openStore(t, 0)
	a := randomBytes(DefaultChunkSize, 7)
	b := make([]byte, 0, 6*DefaultChunkSize)
	b = append(b, a...)
	b = append(b, make([]byte, 2*DefaultChunkSize)...) // two zero chunks
	b = append(b, a...)                                // a again
	b = append(b, randomBytes(DefaultChunkSize, 8)...)
	ck := sealFiles(t, src, "w", 1, map[string][]byte{"pages.img": b, "copy.img": a, "zeros": make([]byte, 1000)})
	srv := startServer(t, p, dst, nil)
	cl := newTestClient(t, p, nil, nil)
	stats, err := cl.Send(background(t), srv.Addr().String(), "receiver", ck)
	if err != nil {
		t.Fatal(err)
	}
	distinct, _ := newChunks(&Manifest{}, ck.Manifest) // distinct chunks that are not all zeros
	if stats.Chunks != len(chunkSet(ck.Manifest)) || stats.ChunksSent != distinct || distinct >= stats.Chunks {
		t.Errorf("stats %+v: want %d chunks, %d sent (each distinct non-zero chunk once)", stats, len(chunkSet(ck.Manifest)), distinct)
	}
	sameCheckpoint(t, dst, ck)
}

// refused runs one refused send and checks the error and that the
// receiver shows nothing new and kept no staging.
func refused(t *testing.T, dst *Store, err error, sentinel error, words ...string) {
	t.Helper()
	t.Logf("refused: %v", err)
	if !errors.Is(err, sentinel) {
		t.Fatalf("err = %v, want %v", err, sentinel)
	}
	if errors.Is(err, ErrInterrupted) {
		t.Errorf("err = %v is retryable", err)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("err = %q does not say %q", err, w)
		}
	}
	if got := seqsOf(t, dst, "counter"); len(got) != 1 || got[0] != 1 {
		t.Errorf("receiver lists %v, want only [1]", got)
	}
	noStaging(t, dst)
}

func TestSendRefusals(t *testing.T) {
	p := newTestPKI(t)
	src, dst := openStore(t, 100), openStore(t, 0)
	ck1 := sealFiles(t, src, "counter", 1, sampleFiles(1))
	var policy func(peer string, m *Manifest, digest string) error
	var mu sync.Mutex
	srv := startServer(t, p, dst, func(c *ServerConfig) {
		c.Accept = func(peer string, m *Manifest, digest string) error {
			mu.Lock()
			defer mu.Unlock()
			if policy != nil {
				return policy(peer, m, digest)
			}
			return nil
		}
	})
	addr := srv.Addr().String()
	cl := newTestClient(t, p, nil, nil)
	if _, err := cl.Send(background(t), addr, "receiver", ck1); err != nil {
		t.Fatal(err)
	}

	t.Run("tampered chunk", func(t *testing.T) {
		ck := sealFiles(t, src, "counter", 2, sampleFiles(2))
		f := filepath.Join(ck.FilesDir(), "pages-1.img")
		b, err := os.ReadFile(f)
		must(t, err)
		b[2*DefaultChunkSize+100] ^= 0xff
		must(t, os.WriteFile(f, b, 0o600))
		stats, err := cl.Send(background(t), addr, "receiver", ck)
		k := chunkAt(ck.Manifest, "pages-1.img", 2*DefaultChunkSize+100)
		refused(t, dst, err, ErrCorrupt, fmt.Sprintf("files/pages-1.img chunk %d", k), "sha256")
		if stats.Attempts != 1 {
			t.Errorf("%d attempts, want 1", stats.Attempts)
		}
	})
	t.Run("wrong manifest digest", func(t *testing.T) {
		ck := sealFiles(t, src, "counter", 3, sampleFiles(3))
		o, err := offerOf(ck)
		must(t, err)
		o.digest = strings.Repeat("ab", 32)
		_, err = cl.send(background(t), addr, "receiver", ck, o)
		refused(t, dst, err, ErrDigestMismatch, "offered digest abab", ck.Digest)
	})
	t.Run("not canonical manifest", func(t *testing.T) {
		ck := sealFiles(t, src, "counter", 10, sampleFiles(10))
		o, err := offerOf(ck)
		must(t, err)
		o.manifest = append([]byte(" "), o.manifest...)
		o.digest = digestOf(o.manifest)
		_, err = cl.send(background(t), addr, "receiver", ck, o)
		refused(t, dst, err, ErrBadManifest, "canonical")
	})
	t.Run("exists with another digest", func(t *testing.T) {
		other := openStore(t, 0)
		ck := sealFiles(t, other, "counter", 1, sampleFiles(9))
		_, err := cl.Send(background(t), addr, "receiver", ck)
		refused(t, dst, err, ErrExists, "counter#1", ck1.Digest)
	})
	t.Run("policy", func(t *testing.T) {
		mu.Lock()
		policy = func(peer string, m *Manifest, digest string) error {
			return errors.New("raft expects another checkpoint from " + peer)
		}
		mu.Unlock()
		defer func() { mu.Lock(); policy = nil; mu.Unlock() }()
		ck := sealFiles(t, src, "counter", 4, sampleFiles(4))
		_, err := cl.Send(background(t), addr, "receiver", ck)
		refused(t, dst, err, ErrRefused, "raft expects another checkpoint from sender")
	})
	t.Run("certificate of another CA", func(t *testing.T) {
		stranger := newTestPKI(t)
		c := newTestClient(t, p, stranger.sender, func(c *ClientConfig) {
			// It trusts the receiver, so only the receiver can refuse.
			c.TLS = func(peer string) *tls.Config {
				tc := p.sender.ClientTLS(ALPN, peer)
				tc.Certificates = stranger.sender.ClientTLS(ALPN, peer).Certificates
				return tc
			}
		})
		ck := sealFiles(t, src, "counter", 5, sampleFiles(5))
		_, err := c.Send(background(t), addr, "receiver", ck)
		refused(t, dst, err, ErrUntrusted, "TLS")
	})
	t.Run("no client certificate", func(t *testing.T) {
		c := newTestClient(t, p, nil, func(c *ClientConfig) {
			c.TLS = func(peer string) *tls.Config {
				tc := p.sender.ClientTLS(ALPN, peer)
				tc.Certificates = nil
				return tc
			}
		})
		ck := sealFiles(t, src, "counter", 6, sampleFiles(6))
		_, err := c.Send(background(t), addr, "receiver", ck)
		refused(t, dst, err, ErrUntrusted, "certificate")
	})
	t.Run("client role", func(t *testing.T) {
		tool, err := p.ca.Issue("operator", RoleClient, ck1.Manifest.CreatedAt)
		must(t, err)
		c := newTestClient(t, p, tool, nil)
		ck := sealFiles(t, src, "counter", 7, sampleFiles(7))
		_, err = c.Send(background(t), addr, "receiver", ck)
		refused(t, dst, err, ErrUntrusted)
	})
	t.Run("receiver of another name", func(t *testing.T) {
		ck := sealFiles(t, src, "counter", 8, sampleFiles(8))
		_, err := cl.Send(background(t), addr, "someone-else", ck)
		refused(t, dst, err, ErrUntrusted, "someone-else")
	})
	sameCheckpoint(t, dst, ck1)
}

// TestSendOverTCPRefusesStranger: TLS over TCP refuses a client of
// another CA as QUIC does.
func TestSendOverTCPRefusesStranger(t *testing.T) {
	p, stranger := newTestPKI(t), newTestPKI(t)
	src, dst := openStore(t, 0), openStore(t, 0)
	seal(t, dst, "counter", 1, tree{"a": "a"})
	ck := sealFiles(t, src, "counter", 2, sampleFiles(2))
	srv := startServer(t, p, dst, func(c *ServerConfig) { c.Network = NetworkTCP })
	c := newTestClient(t, p, nil, func(c *ClientConfig) {
		c.Network = NetworkTCP
		c.TLS = func(peer string) *tls.Config {
			tc := p.sender.ClientTLS(ALPN, peer)
			tc.Certificates = stranger.sender.ClientTLS(ALPN, peer).Certificates
			return tc
		}
	})
	_, err := c.Send(background(t), srv.Addr().String(), "receiver", ck)
	refused(t, dst, err, ErrUntrusted, "TLS")
}

// TestResumeAfterCancel: a send cancelled midway leaves the receiver's
// last checkpoint as it was and a staging the next send resumes from.
func TestResumeAfterCancel(t *testing.T) {
	p := newTestPKI(t)
	src, dst := openStore(t, 0), openStore(t, 0)
	ck1 := sealFiles(t, src, "counter", 1, sampleFiles(1))
	ck2 := sealRandom(t, src, "counter", 2, map[string]int{"pages.img": 64 * DefaultChunkSize}, 2)
	ctx, cancel := context.WithCancel(background(t))
	// Only the first send of ck2 gets to 20 chunks: ck1 has 7, the
	// resume fewer than 45.
	srv := startServer(t, p, dst, nil, serverHooks{chunkWritten: func(n int64) {
		if n == 20 {
			cancel()
		}
	}})
	cl := newTestClient(t, p, nil, nil)
	if _, err := cl.Send(background(t), srv.Addr().String(), "receiver", ck1); err != nil {
		t.Fatal(err)
	}
	_, err := cl.Send(ctx, srv.Addr().String(), "receiver", ck2)
	if !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ErrInterrupted and context.Canceled", err)
	}
	sameCheckpoint(t, dst, ck1)
	if got := seqsOf(t, dst, "counter"); len(got) != 1 {
		t.Fatalf("receiver lists %v after the cancelled send", got)
	}
	stats, err := cl.Send(background(t), srv.Addr().String(), "receiver", ck2)
	if err != nil {
		t.Fatal(err)
	}
	if !stats.Resumed || stats.ChunksSent >= stats.Chunks {
		t.Errorf("stats %+v: want a resume sending fewer than all chunks", stats)
	}
	t.Logf("resumed: sent %d of %d chunks", stats.ChunksSent, stats.Chunks)
	sameCheckpoint(t, dst, ck2)
	noStaging(t, dst)
}

// chunkSet lists a manifest's chunks, file by file, as (file, index).
func chunkSet(m *Manifest) [][2]int {
	var out [][2]int
	for i := range m.Files {
		for k := range m.Files[i].Chunks {
			out = append(out, [2]int{i, k})
		}
	}
	return out
}

// newChunks counts the distinct chunks of b, and their bytes, that a
// receiver holding a lacks: not in a, not all zeros.
func newChunks(a, b *Manifest) (int, int64) {
	have := map[string]bool{}
	for _, f := range a.Files {
		for _, c := range f.Chunks {
			have[c.Hash] = true
		}
	}
	n, bytes := 0, int64(0)
	for _, f := range b.Files {
		for _, c := range f.Chunks {
			if have[c.Hash] || c.Hash == zeroHash(c.Size) {
				continue
			}
			have[c.Hash] = true
			n, bytes = n+1, bytes+c.Size
		}
	}
	return n, bytes
}

// chunkAt is the index of the chunk of file path that holds byte off.
func chunkAt(m *Manifest, path string, off int64) int {
	for _, f := range m.Files {
		if f.Path != path {
			continue
		}
		for k, c := range f.Chunks {
			if off < c.Size {
				return k
			}
			off -= c.Size
		}
	}
	return -1
}

// TestSendVolatile: a volatile checkpoint (sealed without fsync) says so
// in its manifest, so that the receiver seals it the same way; it arrives
// whole and verifies.
func TestSendVolatile(t *testing.T) {
	p := newTestPKI(t)
	src, dst := openStore(t, 0), openStore(t, 0)
	st, err := src.Stage("counter")
	must(t, err)
	must(t, os.WriteFile(filepath.Join(st.Dir, "pages-1.img"), randomBytes(3*DefaultChunkSize, 7), 0o600))
	in := info("counter", 1)
	in.Volatile = true
	ck, err := src.Seal(st, in)
	must(t, err)
	if !ck.Manifest.Volatile {
		t.Fatal("the sealed manifest does not say it is volatile")
	}
	srv := startServer(t, p, dst, nil)
	cl := newTestClient(t, p, nil, nil)
	if _, err := cl.Send(background(t), srv.Addr().String(), "receiver", ck); err != nil {
		t.Fatal(err)
	}
	sameCheckpoint(t, dst, ck)
	got, err := dst.Get("counter", 1)
	must(t, err)
	if !got.Manifest.Volatile || got.Digest != ck.Digest {
		t.Fatalf("received %+v (digest %s), want the volatile %s", got.Manifest, got.Digest, ck.Digest)
	}
	must(t, dst.Verify(got, ck.Digest))
}

// TestSendSmallWhole: a checkpoint under localLookupBytes travels whole
// even when the receiver holds most of its chunks in an earlier one:
// looking them up costs more than sending them.
func TestSendSmallWhole(t *testing.T) {
	p := newTestPKI(t)
	src, dst := openStore(t, 0), openStore(t, 0)
	files := map[string][]byte{"core.img": randomBytes(DefaultChunkSize, 1), "mm.img": randomBytes(5000, 2)}
	srv := startServer(t, p, dst, nil)
	cl := newTestClient(t, p, nil, nil)
	if _, err := cl.Send(background(t), srv.Addr().String(), "receiver", sealFiles(t, src, "counter", 1, files)); err != nil {
		t.Fatal(err)
	}
	files["mm.img"] = randomBytes(5000, 3)
	ck := sealFiles(t, src, "counter", 2, files)
	stats, err := cl.Send(background(t), srv.Addr().String(), "receiver", ck)
	if err != nil {
		t.Fatal(err)
	}
	sameCheckpoint(t, dst, ck)
	if n := len(chunkSet(ck.Manifest)); stats.ChunksSent != n {
		t.Fatalf("sent %d of %d chunks: a small checkpoint goes whole", stats.ChunksSent, n)
	}
}
