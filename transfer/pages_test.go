package transfer

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPagesDecode(t *testing.T) {
	withName := func(name string, rest ...byte) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(len(name)))
		return append(append(b, name...), rest...)
	}
	seq := binary.BigEndian.AppendUint64(nil, 7)
	for _, tc := range []struct {
		name string
		in   []byte
		want *pages // nil: rejected
	}{
		{"counter#7", withName("counter", seq...), &pages{"counter", 7}},
		{"longest name, largest seq", (&pages{strings.Repeat("w", maxNameLen), 1<<64 - 1}).append(nil),
			&pages{strings.Repeat("w", maxNameLen), 1<<64 - 1}},
		{"empty", nil, nil},
		{"one byte", []byte{0}, nil},
		{"workload past the end", withName("counter")[:5], nil},
		{"seq short", withName("counter", seq[:7]...), nil},
		{"trailing byte", withName("counter", append(seq, 0)...), nil},
		{"empty workload", withName("", seq...), nil},
		{"dot workload", withName(".staging", seq...), nil},
		{"workload with slash", withName("a/b", seq...), nil},
		{"workload not UTF-8", withName("a\xff", seq...), nil},
		{"workload too long", withName(strings.Repeat("w", maxNameLen+1), seq...), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodePages(tc.in)
			if tc.want == nil {
				if !errors.Is(err, ErrProtocol) {
					t.Fatalf("decoded %+v, %v; want ErrProtocol", got, err)
				}
				return
			}
			if err != nil || got != *tc.want {
				t.Fatalf("decoded %+v, %v; want %+v", got, err, *tc.want)
			}
			if enc := got.append(nil); !bytes.Equal(enc, tc.in) {
				t.Fatalf("encodes to %x, want %x", enc, tc.in)
			}
			if _, _, err := ReadFrame(bytes.NewReader(appendFrame(nil, FramePages, tc.in)), nil); err != nil {
				t.Fatalf("as a frame: %v", err)
			}
		})
	}
}

// pageServer stands in for CRIU's page server on 127.0.0.1: it answers
// every byte with its ASCII upper case and, once reading a connection
// ends, closes it and reports how on ended.
type pageServer struct {
	addr  string
	ended chan error
}

func startPageServer(t *testing.T) *pageServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	ps := &pageServer{addr: ln.Addr().String(), ended: make(chan error, 16)}
	var wg sync.WaitGroup
	var mu sync.Mutex // guards conns
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { ps.ended <- echoUpper(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ps
}

// echoUpper answers c's bytes in upper case until reading fails, then
// closes c and returns the read error (io.EOF at a clean end).
func echoUpper(c net.Conn) error {
	defer c.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if _, werr := c.Write(upper(buf[:n])); werr != nil {
			return werr
		}
		if err != nil {
			return err
		}
	}
}

// upper turns the ASCII lower-case letters of b to upper case, in place.
func upper(b []byte) []byte {
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return b
}

// pagesCall is one call of a Pages hook, with the connection it returned.
type pagesCall struct {
	peer, workload string
	seq            uint64
	conn           *trackedConn
}

// trackedConn is a TCP connection that reports its Close.
type trackedConn struct {
	*net.TCPConn
	once   sync.Once
	closed chan struct{}
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.TCPConn.Close()
}

// hook is a Pages hook that dials ps and reports each call on calls.
func (ps *pageServer) hook(calls chan<- pagesCall) func(peer, workload string, seq uint64) (net.Conn, error) {
	return func(peer, workload string, seq uint64) (net.Conn, error) {
		c, err := net.Dial("tcp", ps.addr)
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{TCPConn: c.(*net.TCPConn), closed: make(chan struct{})}
		calls <- pagesCall{peer: peer, workload: workload, seq: seq, conn: tc}
		return tc, nil
	}
}

// pagesSetup starts a page server and a transfer server on network
// that relays to it, and returns a client and the server.
func pagesSetup(t *testing.T, network string) (*pageServer, chan pagesCall, *Server, *Client) {
	p := newTestPKI(t)
	ps := startPageServer(t)
	calls := make(chan pagesCall, 4)
	srv := startServer(t, p, openStore(t, 0), func(c *ServerConfig) {
		c.Network = network
		c.Pages = ps.hook(calls)
	})
	cl := newTestClient(t, p, nil, func(c *ClientConfig) { c.Network = network })
	return ps, calls, srv, cl
}

// endsWithin fails unless the relay's local connection is closed and the
// page server has read the end of it, within 5 s.
func endsWithin(t *testing.T, ps *pageServer, c *trackedConn) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	select {
	case <-c.closed:
	case <-timeout:
		t.Fatal("the server did not close the page server's connection")
	}
	select {
	case err := <-ps.ended:
		if err != io.EOF {
			t.Fatalf("the page server's read ended with %v, want EOF", err)
		}
	case <-timeout:
		t.Fatal("the page server did not see the end of its connection")
	}
}

// pingPong writes "ping" to rw and expects "PING" back.
func pingPong(t *testing.T, rw io.ReadWriter) {
	t.Helper()
	_, err := rw.Write([]byte("ping"))
	must(t, err)
	got := make([]byte, 4)
	_, err = io.ReadFull(rw, got)
	must(t, err)
	if string(got) != "PING" {
		t.Fatalf("read %q, want PING", got)
	}
}

// TestPagesRelay: bytes go both ways through the relay, more than a
// flow-control window of them, and ending the client's writing ends the
// relay on every side.
func TestPagesRelay(t *testing.T) {
	for _, network := range []string{NetworkQUIC, NetworkTCP} {
		t.Run(network, func(t *testing.T) {
			ps, calls, srv, cl := pagesSetup(t, network)
			rw, err := cl.OpenPages(background(t), srv.Addr().String(), "receiver", "counter", 42)
			must(t, err)
			defer rw.Close()
			call := <-calls
			if call.peer != "sender" || call.workload != "counter" || call.seq != 42 {
				t.Errorf("Pages(%q, %q, %d), want (sender, counter, 42)", call.peer, call.workload, call.seq)
			}
			data := make([]byte, 3<<20+12345)
			fillRandom(data, 1)
			want := upper(bytes.Clone(data))
			wrote := make(chan error, 1)
			go func() {
				for b := data; len(b) > 0; {
					n, err := rw.Write(b[:min(len(b), 100_000)])
					if err != nil {
						wrote <- err
						return
					}
					b = b[n:]
				}
				wrote <- rw.(interface{ CloseWrite() error }).CloseWrite()
			}()
			got, err := io.ReadAll(rw)
			must(t, err)
			must(t, <-wrote)
			if !bytes.Equal(got, want) {
				t.Fatalf("read %d bytes, want %d, not the same", len(got), len(want))
			}
			endsWithin(t, ps, call.conn)
		})
	}
}

func TestPagesRefused(t *testing.T) {
	p := newTestPKI(t)
	cause := errors.New("no page server for counter#3 here")
	for _, tc := range []struct {
		name  string
		pages func(peer, workload string, seq uint64) (net.Conn, error)
		want  string
	}{
		{"hook fails", func(string, string, uint64) (net.Conn, error) { return nil, cause }, cause.Error()},
		{"no hook", nil, "relays no page servers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, p, openStore(t, 0), func(c *ServerConfig) { c.Pages = tc.pages })
			cl := newTestClient(t, p, nil, nil)
			rw, err := cl.OpenPages(background(t), srv.Addr().String(), "receiver", "counter", 3)
			if err == nil {
				rw.Close()
				t.Fatal("OpenPages succeeded")
			}
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrRefused naming %q", err, tc.want)
			}
		})
	}
}

// TestPagesClientClose: closing the client's end ends the relay and
// closes the page server's connection.
func TestPagesClientClose(t *testing.T) {
	for _, network := range []string{NetworkQUIC, NetworkTCP} {
		t.Run(network, func(t *testing.T) {
			ps, calls, srv, cl := pagesSetup(t, network)
			rw, err := cl.OpenPages(background(t), srv.Addr().String(), "receiver", "counter", 1)
			must(t, err)
			call := <-calls
			pingPong(t, rw)
			must(t, rw.Close())
			endsWithin(t, ps, call.conn)
		})
	}
}

// TestPagesServerClose: closing the server ends a relay that runs, and
// leaves nothing running.
func TestPagesServerClose(t *testing.T) {
	ps, calls, srv, cl := pagesSetup(t, NetworkQUIC)
	rw, err := cl.OpenPages(background(t), srv.Addr().String(), "receiver", "counter", 1)
	must(t, err)
	defer rw.Close()
	call := <-calls
	pingPong(t, rw)
	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()
	select {
	case err := <-closed:
		must(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Server.Close did not return")
	}
	endsWithin(t, ps, call.conn)
	if n, err := rw.Read(make([]byte, 1)); err == nil {
		t.Fatalf("the client read %d bytes after the server closed", n)
	}
	rw.Close()
	noLeaks(t)
}

// TestPagesCancel: ctx ends an OpenPages whose server has not answered.
func TestPagesCancel(t *testing.T) {
	p := newTestPKI(t)
	called, release := make(chan struct{}), make(chan struct{})
	srv := startServer(t, p, openStore(t, 0), func(c *ServerConfig) {
		c.Pages = func(string, string, uint64) (net.Conn, error) {
			close(called)
			<-release
			return nil, errors.New("too late")
		}
	})
	defer close(release)
	cl := newTestClient(t, p, nil, nil)
	ctx, cancel := context.WithCancel(background(t))
	go func() {
		<-called
		cancel()
	}()
	_, err := cl.OpenPages(ctx, srv.Addr().String(), "receiver", "counter", 1)
	if !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ErrInterrupted and context.Canceled", err)
	}
}
