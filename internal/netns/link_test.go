package netns

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"
)

// linked makes two namespaces joined by Link and returns them with their
// addresses; both go when the test ends.
func linked(t *testing.T) (a, b *NS, ipA, ipB string) {
	t.Helper()
	needRoot(t)
	var err error
	if a, err = New("la"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if b, err = New("lb"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	sub := rand.IntN(256)
	ipA, ipB = fmt.Sprintf("10.252.%d.1", sub), fmt.Sprintf("10.252.%d.2", sub)
	if err := Link(a, b, ipA, ipB, 30); err != nil {
		t.Fatal(err)
	}
	return a, b, ipA, ipB
}

// netnsOfThread is the network namespace of the calling thread.
func netnsOfThread(t *testing.T) string {
	t.Helper()
	s, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLinkAndDo(t *testing.T) {
	a, b, ipA, _ := linked(t)

	runtime.LockOSThread()
	before := netnsOfThread(t)
	var inside string
	var ln net.Listener
	err := a.Do(func() error {
		inside = netnsOfThread(t)
		var err error
		ln, err = net.Listen("tcp", ipA+":0")
		return err
	})
	after := netnsOfThread(t)
	runtime.UnlockOSThread()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if inside == before || after != before {
		t.Errorf("namespace before %s, inside %s, after %s", before, inside, after)
	}

	// A client made inside b reaches the listener made inside a.
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, err = c.Write([]byte("hi"))
			c.Close()
		}
		accepted <- err
	}()
	var got []byte
	err = b.Do(func() error {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 8)
		n, err := c.Read(buf)
		got = buf[:n]
		return err
	})
	if err != nil || string(got) != "hi" {
		t.Fatalf("read %q, %v", got, err)
	}
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}

	// The root namespace has no route into the link.
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), 300*time.Millisecond); err == nil {
		c.Close()
		t.Error("the root namespace reached a listener inside a")
	}

	want := errors.New("from fn")
	if err := a.Do(func() error { return want }); !errors.Is(err, want) {
		t.Errorf("Do returned %v, want fn's error", err)
	}
}

// udpExchange sends one datagram from a socket in b to one in a and
// reports whether it arrived within wait.
func udpExchange(t *testing.T, a, b *NS, ipA string, wait time.Duration) bool {
	t.Helper()
	var srv, cl net.PacketConn
	if err := a.Do(func() (err error) { srv, err = net.ListenPacket("udp", ipA+":0"); return err }); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := b.Do(func() (err error) { cl, err = net.ListenPacket("udp", ":0"); return err }); err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.WriteTo([]byte("ping"), srv.LocalAddr()); err != nil {
		t.Fatalf("send: %v", err)
	}
	srv.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 16)
	n, _, err := srv.ReadFrom(buf)
	return err == nil && string(buf[:n]) == "ping"
}

func TestPartitionAndHeal(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and nft (nftables) is not installed")
		}
		t.Skip("nft (nftables) is not installed")
	}
	a, b, ipA, _ := linked(t)
	if !udpExchange(t, a, b, ipA, 5*time.Second) {
		t.Fatal("no datagram over the link before the partition")
	}
	if err := a.Partition(); err != nil {
		t.Fatal(err)
	}
	if udpExchange(t, a, b, ipA, 300*time.Millisecond) {
		t.Error("a datagram arrived during the partition")
	}
	if err := a.Heal(); err != nil {
		t.Fatal(err)
	}
	if !udpExchange(t, a, b, ipA, 5*time.Second) {
		t.Error("no datagram over the link after Heal")
	}
}
