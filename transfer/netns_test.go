package transfer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/internal/netns"
)

// needNetns skips a test that needs root and iproute2 (and nft, if
// withNFT), except under CI=true, where it fails.
func needNetns(t testing.TB, withNFT bool) {
	t.Helper()
	missing := ""
	switch {
	case os.Geteuid() != 0:
		missing = "root"
	case !onPath("ip"):
		missing = "ip (iproute2)"
	case withNFT && !onPath("nft"):
		missing = "nft (nftables)"
	}
	if missing == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and network namespaces need %s", missing)
	}
	t.Skipf("network namespaces need %s", missing)
}

// errorIf reports err, if any, without stopping the goroutine (hooks
// run on the server's).
func errorIf(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Error(err)
	}
}

func onPath(cmd string) bool {
	_, err := exec.LookPath(cmd)
	return err == nil
}

// nsPair is two network namespaces joined by a veth link: the receiver
// in a, the sender in b.
type nsPair struct {
	a, b     *netns.NS
	ipA, ipB string
}

// newNSPair makes the namespaces; they go when the test ends.
func newNSPair(t testing.TB) *nsPair {
	t.Helper()
	p := &nsPair{}
	var err error
	if p.a, err = netns.New("tra"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.a.Close() })
	if p.b, err = netns.New("trb"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.b.Close() })
	sub := rand.IntN(256)
	p.ipA, p.ipB = fmt.Sprintf("10.251.%d.1", sub), fmt.Sprintf("10.251.%d.2", sub)
	if err := netns.Link(p.a, p.b, p.ipA, p.ipB, 30); err != nil {
		t.Fatal(err)
	}
	return p
}

// serverPacketConn is a UDP socket inside a.
func (p *nsPair) serverPacketConn(t testing.TB) net.PacketConn {
	t.Helper()
	var pc net.PacketConn
	err := p.a.Do(func() (err error) {
		pc, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(p.ipA)})
		return err
	})
	must(t, err)
	return pc
}

// serverListener is a TCP listener inside a.
func (p *nsPair) serverListener(t testing.TB) net.Listener {
	t.Helper()
	var ln net.Listener
	err := p.a.Do(func() (err error) {
		ln, err = net.Listen("tcp", p.ipA+":0")
		return err
	})
	must(t, err)
	return ln
}

// clientPacketConn makes a UDP socket inside b.
func (p *nsPair) clientPacketConn() (net.PacketConn, error) {
	var pc net.PacketConn
	err := p.b.Do(func() (err error) {
		pc, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(p.ipB)})
		return err
	})
	return pc, err
}

// dialTCP dials from inside b.
func (p *nsPair) dialTCP(ctx context.Context, addr string) (net.Conn, error) {
	var c net.Conn
	err := p.b.Do(func() (err error) {
		d := net.Dialer{KeepAliveConfig: tcpKeepAlive}
		c, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	return c, err
}

func TestNetnsSend(t *testing.T) {
	needNetns(t, false)
	p := newTestPKI(t)
	ns := newNSPair(t)
	src, dst := openStore(t, 0), openStore(t, 0)
	ck := sealRandom(t, src, "counter", 1, map[string]int{"pages-1.img": 24<<20 + 5, "core.img": 4096}, 1)
	srv := startServer(t, p, dst, func(c *ServerConfig) { c.PacketConn = ns.serverPacketConn(t) })
	cl := newTestClient(t, p, nil, func(c *ClientConfig) { c.ListenPacket = ns.clientPacketConn })
	stats, err := cl.Send(background(t), srv.Addr().String(), "receiver", ck)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sent %d bytes in %v", stats.BytesSent, stats.Took)
	sameCheckpoint(t, dst, ck)
	noStaging(t, dst)
}

// interruptedSend sends ck1 then ck2 from b to a; break(), called once
// the receiver has written 40 chunks of ck2, breaks the transfer off;
// mend(), called after the first attempt failed, lets the next one
// through. It checks the receiver between the two, and that the retry
// resumed.
func interruptedSend(t *testing.T, ns *nsPair, edit func(*ClientConfig), breakOff, mend func()) {
	p := newTestPKI(t)
	src, dst := openStore(t, 0), openStore(t, 0)
	ck1 := sealRandom(t, src, "counter", 1, map[string]int{"pages-1.img": 2 << 20}, 1)
	ck2 := sealRandom(t, src, "counter", 2, map[string]int{"pages-1.img": 128 * DefaultChunkSize}, 2)
	var once sync.Once
	srv := startServer(t, p, dst, func(c *ServerConfig) { c.PacketConn = ns.serverPacketConn(t) }, serverHooks{
		chunkWritten: func(n int64) {
			if n == 40 {
				once.Do(breakOff)
			}
		}})
	cl := newTestClient(t, p, nil, func(c *ClientConfig) {
		c.ListenPacket = ns.clientPacketConn
		edit(c)
	})
	if _, err := cl.Send(background(t), srv.Addr().String(), "receiver", ck1); err != nil {
		t.Fatal(err)
	}
	var firstErr error
	cl.hooks.attemptDone = func(attempt int, err error) {
		if attempt != 1 {
			return
		}
		firstErr = err
		// Between the attempts the receiver still shows checkpoint 1
		// alone, intact.
		if got := seqsOf(t, dst, "counter"); len(got) != 1 || got[0] != 1 {
			t.Errorf("receiver lists %v after the break", got)
		}
		sameCheckpoint(t, dst, ck1)
		mend()
	}
	stats, err := cl.Send(background(t), srv.Addr().String(), "receiver", ck2)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first attempt: %v", firstErr)
	t.Logf("%d attempts, the last sent %d of %d chunks, resumed %v", stats.Attempts, stats.ChunksSent, stats.Chunks, stats.Resumed)
	if !errors.Is(firstErr, ErrInterrupted) {
		t.Errorf("first attempt failed with %v, want ErrInterrupted", firstErr)
	}
	if stats.Attempts != 2 || !stats.Resumed || stats.ChunksSent > stats.Chunks-40 {
		t.Errorf("stats %+v: want 2 attempts, the second resumed, sending at most %d chunks", stats, stats.Chunks-40)
	}
	sameCheckpoint(t, dst, ck2)
	sameCheckpoint(t, dst, ck1)
	noStaging(t, dst)
}

// TestNetnsSocketKilled: the sender's socket closes abruptly midway.
func TestNetnsSocketKilled(t *testing.T) {
	needNetns(t, false)
	ns := newNSPair(t)
	var mu sync.Mutex
	var socks []net.PacketConn
	interruptedSend(t, ns, func(c *ClientConfig) {
		c.ListenPacket = func() (net.PacketConn, error) {
			pc, err := ns.clientPacketConn()
			if err == nil {
				mu.Lock()
				socks = append(socks, pc)
				mu.Unlock()
			}
			return pc, err
		}
	}, func() {
		mu.Lock()
		defer mu.Unlock()
		socks[len(socks)-1].Close()
	}, func() {})
}

// TestNetnsLinkCut: the link between the namespaces drops every packet
// midway, until the sender has given the attempt up.
func TestNetnsLinkCut(t *testing.T) {
	needNetns(t, true)
	ns := newNSPair(t)
	interruptedSend(t, ns, func(c *ClientConfig) {
		c.IdleTimeout = 1500 * time.Millisecond
	}, func() {
		errorIf(t, ns.a.Partition())
		errorIf(t, ns.b.Partition())
	}, func() {
		errorIf(t, ns.a.Heal())
		errorIf(t, ns.b.Heal())
	})
}

// TestNetnsSendOverTCP: the same protocol over TLS/TCP between the
// namespaces.
func TestNetnsSendOverTCP(t *testing.T) {
	needNetns(t, false)
	p := newTestPKI(t)
	ns := newNSPair(t)
	src, dst := openStore(t, 0), openStore(t, 0)
	ck := sealRandom(t, src, "counter", 1, map[string]int{"pages-1.img": 8<<20 + 1}, 1)
	srv := startServer(t, p, dst, func(c *ServerConfig) {
		c.Network = NetworkTCP
		c.Listener = ns.serverListener(t)
	})
	cl := newTestClient(t, p, nil, func(c *ClientConfig) {
		c.Network = NetworkTCP
		c.DialTCP = ns.dialTCP
	})
	if _, err := cl.Send(background(t), srv.Addr().String(), "receiver", ck); err != nil {
		t.Fatal(err)
	}
	sameCheckpoint(t, dst, ck)
}
