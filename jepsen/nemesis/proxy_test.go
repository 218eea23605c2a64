package nemesis

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

// The proxy on loopback: no namespaces, no root. Destinations come from
// a table keyed by the proxy listener's port instead of SO_ORIGINAL_DST.

const (
	msgSize = 1 << 10
	msgs    = 20
)

// serveLoop accepts on ln until it closes, running handle for each
// connection; wait returns once every goroutine has ended.
func serveLoop(t *testing.T, ln net.Listener, handle func(net.Conn)) (wait func()) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				handle(c)
			})
		}
	})
	wait = func() { ln.Close(); wg.Wait() }
	t.Cleanup(wait)
	return wait
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func addrPort(ln net.Listener) netip.AddrPort { return ln.Addr().(*net.TCPAddr).AddrPort() }

// routed is a proxy whose listener i relays to dsts[i]; allowed are the
// destinations it may reach.
func routed(t *testing.T, d, jitter time.Duration, dsts []netip.AddrPort, allowed ...netip.AddrPort) (*delayProxy, []netip.AddrPort) {
	t.Helper()
	routes := map[uint16]netip.AddrPort{}
	var mu sync.Mutex // guards routes while listeners are added
	dest := func(c *net.TCPConn) (netip.AddrPort, error) {
		mu.Lock()
		defer mu.Unlock()
		dst, ok := routes[c.LocalAddr().(*net.TCPAddr).AddrPort().Port()]
		if !ok {
			return dst, errors.New("no route")
		}
		return dst, nil
	}
	allow := func(dst netip.AddrPort) bool {
		for _, a := range allowed {
			if a == dst {
				return true
			}
		}
		return false
	}
	p := newDelayProxy(d, jitter, dest, allow, nil)
	t.Cleanup(func() { _ = p.Close() })
	var front []netip.AddrPort
	for _, dst := range dsts {
		ln := listenLoopback(t)
		mu.Lock()
		routes[addrPort(ln).Port()] = dst
		mu.Unlock()
		if err := p.serve(ln); err != nil {
			t.Fatal(err)
		}
		front = append(front, addrPort(ln))
	}
	return p, front
}

// TestDelayProxy: messages arrive intact, in order and at least d late in
// each direction; 4 MiB (twice the queue) arrive intact through the
// backpressure, and a half-close passes; Close ends a live relay, stops
// the listeners and leaves no goroutine behind.
func TestDelayProxy(t *testing.T) {
	base := runtime.NumGoroutine()
	const d, jitter = 40 * time.Millisecond, 10 * time.Millisecond
	var mu sync.Mutex        // guards seen
	var seen [msgs]time.Time // when the server read message i and echoed it
	echoLn, hashLn := listenLoopback(t), listenLoopback(t)
	waitEcho := serveLoop(t, echoLn, func(c net.Conn) {
		buf := make([]byte, msgSize)
		for i := 0; ; i++ {
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			mu.Lock()
			if i < msgs {
				seen[i] = time.Now()
			}
			mu.Unlock()
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	waitHash := serveLoop(t, hashLn, func(c net.Conn) {
		h := sha256.New()
		if _, err := io.Copy(h, c); err == nil {
			_, _ = c.Write(h.Sum(nil))
		}
	})
	p, front := routed(t, d, jitter, []netip.AddrPort{addrPort(echoLn), addrPort(hashLn)}, addrPort(echoLn), addrPort(hashLn))

	c, err := net.Dial("tcp4", front[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wrote, back [msgs]time.Time
	done := make(chan error, 1)
	go func() { // pipelined: several messages wait in the proxy at once
		for i := range msgs {
			wrote[i] = time.Now()
			if _, err := c.Write(message(i)); err != nil {
				done <- err
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		done <- nil
	}()
	buf := make([]byte, msgSize)
	for i := range msgs {
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatalf("echo %d: %v", i, err)
		}
		back[i] = time.Now()
		if !bytes.Equal(buf, message(i)) {
			t.Fatalf("echo %d: wrong bytes (out of order or corrupt)", i)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	for i := range msgs {
		if there := seen[i].Sub(wrote[i]); there < d {
			t.Errorf("message %d reached the server %v after it was written, want >= %v", i, there, d)
		}
		if again := back[i].Sub(seen[i]); again < d {
			t.Errorf("echo %d came back %v after the server wrote it, want >= %v", i, again, d)
		}
	}
	t.Logf("message 0: there %v, back %v (d %v, jitter %v)", seen[0].Sub(wrote[0]), back[0].Sub(seen[0]), d, jitter)
	mu.Unlock()

	bulkThrough(t, front[1])

	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(buf); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a relayed connection survives Close: read %v", err)
	}
	if c2, err := net.Dial("tcp4", front[0].String()); err == nil {
		c2.Close()
		t.Error("the listener accepts after Close")
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if got := p.relayed.Load(); got != 2 {
		t.Errorf("relayed %d connections, want 2", got)
	}
	c.Close()
	waitEcho()
	waitHash()
	noLeak(t, base)
}

// bulkThrough sends 4 MiB (twice the proxy's queue) to a hashing server
// via addr, half-closes, and checks the hash that comes back.
func bulkThrough(t *testing.T, addr netip.AddrPort) {
	t.Helper()
	bulk := make([]byte, 4<<20)
	_, _ = rand.Read(bulk)
	h, err := net.Dial("tcp4", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.Write(bulk); err != nil {
		t.Fatal(err)
	}
	if err := h.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	sum, err := io.ReadAll(h)
	if want := sha256.Sum256(bulk); err != nil || !bytes.Equal(sum, want[:]) {
		t.Fatalf("bulk: hash %x, err %v, want %x", sum, err, want)
	}
}

func message(i int) []byte {
	b := bytes.Repeat([]byte{byte(i)}, msgSize)
	copy(b, fmt.Sprintf("message %d", i))
	return b
}

// TestDelayProxyRefuses: a destination not allowed, or none found, is
// refused (the connection closed) without a dial.
func TestDelayProxyRefuses(t *testing.T) {
	base := runtime.NumGoroutine()
	target := listenLoopback(t)
	accepted := make(chan struct{}, 1)
	waitTarget := serveLoop(t, target, func(net.Conn) { accepted <- struct{}{} })
	// Listener 0 routes to target, which is not allowed; listener 1
	// has no route at all.
	p, front := routed(t, time.Millisecond, 0, []netip.AddrPort{addrPort(target)})
	ln := listenLoopback(t)
	if err := p.serve(ln); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{front[0].String(), ln.Addr().String()} {
		c, err := net.Dial("tcp4", a)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
			t.Errorf("via %s: read %d, %v; want EOF (refused)", a, n, err)
		}
		c.Close()
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	waitTarget()
	if len(accepted) != 0 || p.relayed.Load() != 0 {
		t.Errorf("the proxy dialled a refused destination (%d relayed)", p.relayed.Load())
	}
	if err := p.serve(listenLoopback(t)); !errors.Is(err, errProxyClosed) {
		t.Errorf("serve after Close: %v, want errProxyClosed", err)
	}
	noLeak(t, base)
}

// noLeak waits (5 s at most) until no more goroutines run than at base.
func noLeak(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines, %d before:\n%s", n, base, buf[:runtime.Stack(buf, true)])
	}
}
