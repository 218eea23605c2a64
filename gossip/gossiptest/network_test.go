package gossiptest

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func TestPacketsAndStreams(t *testing.T) {
	var n Network
	a, b := n.NewTransport("a"), n.NewTransport("b")
	if a.Addr() == b.Addr() {
		t.Fatalf("same address %s", a.Addr())
	}
	ip, port, err := a.FinalAdvertiseAddr("", 0)
	if err != nil || ip.String()+":7946" != a.Addr() || port != Port {
		t.Errorf("FinalAdvertiseAddr = %v, %d, %v", ip, port, err)
	}
	msg := []byte("ping")
	if _, err := a.WriteTo(msg, b.Addr()); err != nil {
		t.Fatal(err)
	}
	msg[0] = 'X' // the network must have copied it
	p := <-b.PacketCh()
	if string(p.Buf) != "ping" || p.From.String() != a.Addr() {
		t.Errorf("got %q from %s", p.Buf, p.From)
	}

	c, err := a.DialAddressTimeout(memberlist.Address{Addr: b.Addr(), Name: "b"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s := <-b.StreamCh()
	if s.RemoteAddr().String() != a.Addr() || c.RemoteAddr().String() != b.Addr() {
		t.Errorf("stream addresses %s, %s", s.RemoteAddr(), c.RemoteAddr())
	}
	go func() { c.Write([]byte("hello")); c.Close() }()
	if got, _ := io.ReadAll(s); string(got) != "hello" {
		t.Errorf("stream carried %q", got)
	}
}

func TestWritesNeverBlock(t *testing.T) {
	var n Network
	a, b := n.NewTransport("a"), n.NewTransport("b")
	for range packetBuffer + 10 { // nobody reads b
		a.WriteTo([]byte{1}, b.Addr())
	}
	if got := len(b.PacketCh()); got != packetBuffer {
		t.Errorf("%d packets queued, want %d", got, packetBuffer)
	}
}

func TestShutdownAndPartition(t *testing.T) {
	var n Network
	a, b, c := n.NewTransport("a"), n.NewTransport("b"), n.NewTransport("c")
	n.Partition([]string{"a"}, []string{"b"})
	a.WriteTo([]byte{1}, b.Addr())
	if len(b.PacketCh()) != 0 {
		t.Error("packet crossed the partition")
	}
	if _, err := a.DialTimeout(b.Addr(), time.Second); !errors.Is(err, ErrUnreachable) {
		t.Errorf("dial across partition = %v", err)
	}
	a.WriteTo([]byte{1}, c.Addr()) // c is in no group: reachable
	if len(c.PacketCh()) != 1 {
		t.Error("unpartitioned node unreachable")
	}
	n.Heal()
	a.WriteTo([]byte{1}, b.Addr())
	if len(b.PacketCh()) != 1 {
		t.Error("packet lost after Heal")
	}
	b.Shutdown()
	if _, err := a.DialTimeout(b.Addr(), time.Second); !errors.Is(err, ErrUnreachable) {
		t.Errorf("dial to a shut down node = %v", err)
	}
	if _, err := a.DialTimeout("10.9.9.9:7946", time.Second); !errors.Is(err, ErrUnreachable) {
		t.Errorf("dial to an unknown address = %v", err)
	}
}
