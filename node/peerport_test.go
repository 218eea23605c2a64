package node

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/node/api"
	"github.com/lifeboat/lifeboat/node/peer"
	"github.com/lifeboat/lifeboat/transfer"
)

// leaseOnly is a peer.Handler that leads and renews any lease it is asked
// to (the endpoint decides whose it may be); nothing else is called.
type leaseOnly struct{ peer.Handler }

func (leaseOnly) Leads() bool { return true }
func (leaseOnly) Lease(_ context.Context, req peer.LeaseRequest) (peer.LeaseAnswer, error) {
	return peer.LeaseAnswer{Renewed: req.Node, Index: 1}, nil
}

// TestPeerPortMux: the peer endpoints share the Raft port over mutual TLS.
// A peer of the CA renews its own lease and no other; a client
// certificate, a certificate of another CA, no certificate and the
// operator's bearer token get no answer at all; Prove accepts only the
// name the certificate says.
func TestPeerPortMux(t *testing.T) {
	ca, _ := transfer.NewCA("test", time.Now())
	n1, _ := ca.Issue("n1", transfer.RolePeer, time.Now())
	n2, _ := ca.Issue("n2", transfer.RolePeer, time.Now())
	operator, _ := ca.Issue("ops", transfer.RoleClient, time.Now())
	other, _ := transfer.NewCA("other", time.Now())
	stranger, _ := other.Issue("n2", transfer.RolePeer, time.Now())

	layer, peerLn, err := newTLSStreamLayer("127.0.0.1:0", nil, n1, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: peer.NewHandler(leaseOnly{}, peer.Options{Name: "n1"}), ConnContext: peer.ConnContext}
	go srv.Serve(peerLn)
	t.Cleanup(func() { srv.Close(); layer.Close() })
	addr := layer.Listener.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c := newPeerClient(nil, n2)
	if ans, err := c.Lease(ctx, addr, peer.LeaseRequest{Node: "n2"}); err != nil || ans.Renewed != "n2" {
		t.Fatalf("n2 renewing its own lease: %+v %v", ans, err)
	}
	if _, err := c.Lease(ctx, addr, peer.LeaseRequest{Node: "n1"}); !errors.Is(err, api.ErrForbidden) {
		t.Fatalf("n2 renewing n1's lease: %v, want forbidden", err)
	}
	if err := c.Prove(ctx, addr, "n1"); err != nil {
		t.Fatalf("n1 proving itself: %v", err)
	}
	if err := c.Prove(ctx, addr, "n3"); !errors.Is(err, peer.ErrNotPeer) {
		t.Fatalf("n1 passing for n3: %v, want ErrNotPeer", err)
	}

	// Anything but a peer certificate of the CA fails the handshake.
	for name, tc := range map[string]*tls.Config{
		"client certificate":    tlsAs(operator, n1),
		"another CA":            tlsAs(stranger, n1),
		"no certificate, token": tlsAs(nil, n1),
	} {
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 5 * time.Second}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+addr+"/v1/internal/lease",
			strings.NewReader(`{"node":"n2"}`))
		req.Header.Set("Authorization", "Bearer the-operators-token")
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: answered %s, want a failed handshake", name, resp.Status)
		}
	}
	if err := newPeerClient(nil, stranger).Prove(ctx, addr, "n1"); !errors.Is(err, peer.ErrNotPeer) {
		t.Fatalf("a stranger's prove: %v, want ErrNotPeer", err)
	}
}

// tlsAs is a peer-protocol client presenting id (nil: none) that trusts
// server's CA.
func tlsAs(id, server *transfer.Identity) *tls.Config {
	tc := server.ClientTLS(peer.ALPN, "")
	tc.Certificates = nil
	if id != nil {
		tc.Certificates = []tls.Certificate{id.Cert}
	}
	return tc
}

// BenchmarkPeerCall measures one peer call (a lease renewal, answered at
// once) as the cutover makes them: over the Raft port's mutual TLS on
// kept-alive connections, against the plain HTTP the peers spoke before,
// on loopback.
func BenchmarkPeerCall(b *testing.B) {
	ca, _ := transfer.NewCA("bench", time.Now())
	n1, _ := ca.Issue("n1", transfer.RolePeer, time.Now())
	n2, _ := ca.Issue("n2", transfer.RolePeer, time.Now())
	h := peer.NewHandler(leaseOnly{}, peer.Options{Name: "n1"})
	ctx := context.Background()
	run := func(b *testing.B, c *peer.Client, addr string) {
		for b.Loop() {
			if _, err := c.Lease(ctx, addr, peer.LeaseRequest{Node: "n2"}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("mtls", func(b *testing.B) {
		layer, peerLn, err := newTLSStreamLayer("127.0.0.1:0", nil, n1, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		srv := &http.Server{Handler: h, ConnContext: peer.ConnContext}
		go srv.Serve(peerLn)
		defer func() { srv.Close(); layer.Close() }()
		addr := layer.Listener.Addr().String()
		b.Run("kept-alive", func(b *testing.B) { run(b, newPeerClient(nil, n2), addr) })
		b.Run("new-connection", func(b *testing.B) { // the handshake every call: the worst case
			tr := peer.Transport(n2.ClientTLS(peer.ALPN, ""), (&net.Dialer{}).DialContext)
			tr.DisableKeepAlives = true
			run(b, peer.NewClient(&http.Client{Transport: tr}, certName), addr)
		})
	})
	b.Run("plain-http", func(b *testing.B) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r.WithContext(peer.WithCaller(r.Context(), "n2")))
		}))
		defer srv.Close()
		plain := &http.Client{Transport: plainHTTP{&http.Transport{MaxIdleConnsPerHost: 4}}}
		run(b, peer.NewClient(plain, nil), strings.TrimPrefix(srv.URL, "http://"))
	})
}

// plainHTTP sends an https:// request as plain HTTP: the peers' old wire.
type plainHTTP struct{ rt http.RoundTripper }

func (p plainHTTP) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme = "http"
	return p.rt.RoundTrip(r)
}
