package node

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lifeboat/lifeboat/transfer"
)

func testLayer(t *testing.T, id *transfer.Identity) *tlsStreamLayer {
	t.Helper()
	l, peerLn, err := newTLSStreamLayer("127.0.0.1:0", nil, id, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(); peerLn.Close() })
	return l
}

// TestRaftStreamLayerIsMutualTLS: Raft's transport connects peers of the
// cluster CA and hands Raft no connection from anyone else.
func TestRaftStreamLayerIsMutualTLS(t *testing.T) {
	ca, _ := transfer.NewCA("test", time.Now())
	n1, _ := ca.Issue("n1", transfer.RolePeer, time.Now())
	n2, _ := ca.Issue("n2", transfer.RolePeer, time.Now())
	other, _ := transfer.NewCA("other", time.Now())
	stranger, _ := other.Issue("n3", transfer.RolePeer, time.Now())
	srv := testLayer(t, n1)
	addr := raft.ServerAddress(srv.Listener.Addr().String())

	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := srv.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()

	// A stranger's dial fails: it does not trust n1, and n1 would not trust it.
	if _, err := testLayer(t, stranger).Dial(addr, time.Second); !errors.Is(err, transfer.ErrUntrusted) {
		t.Fatalf("stranger dial: %v, want ErrUntrusted", err)
	}
	// A client with no certificate completes nothing: the server refuses it.
	raw, err := tls.Dial("tcp", string(addr), &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err == nil {
		raw.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = raw.Read(make([]byte, 1))
		raw.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("certificate-less client: %v, want a certificate error", err)
	}

	// A peer of the CA gets through, and its bytes reach Raft's side.
	c, err := testLayer(t, n2).Dial(addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-accepted:
		defer s.Close()
		b := make([]byte, 1)
		if _, err := io.ReadFull(s, b); err != nil || b[0] != 'x' {
			t.Fatalf("server read %q %v", b, err)
		}
		if name, _, err := transfer.PeerName(s.(*tls.Conn).ConnectionState()); err != nil || name != "n2" {
			t.Fatalf("peer name %q %v", name, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the peer's connection never reached Raft")
	}
	select {
	case s, ok := <-accepted:
		if ok {
			t.Fatalf("a second connection reached Raft: %v", s.RemoteAddr())
		}
	default:
	}
}
