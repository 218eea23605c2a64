package peer

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/lifeboat/lifeboat/node/api"
)

// ALPN is the protocol a peer call negotiates over TLS. It shares the Raft
// port with Raft's own protocol: the port's listener hands each
// connection, once its mutual TLS handshake has proved a peer certificate
// of the cluster CA, to Raft or to these endpoints by the protocol the
// client chose.
const ALPN = "lifeboat-peer/1"

type callerKey struct{}

// WithCaller returns ctx carrying the name of the peer that sent a
// request, as its verified certificate names it. Only the transport may
// say this: the server's ConnContext (real sockets) or the in-memory
// network of tests.
func WithCaller(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, callerKey{}, name)
}

// Caller is the verified name of the peer that sent the request of ctx.
func Caller(ctx context.Context) (string, bool) {
	name, ok := ctx.Value(callerKey{}).(string)
	return name, ok && name != ""
}

// Conn is a peer connection whose TLS handshake has proved a peer
// certificate naming Name. The listener that made it hands it to an
// http.Server whose ConnContext is ConnContext.
type Conn struct {
	net.Conn
	Name string
}

// ConnContext is the http.Server ConnContext of the peer endpoints: it
// carries a Conn's verified name into every request read from it.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if pc, ok := c.(*Conn); ok {
		return WithCaller(ctx, pc.Name)
	}
	return ctx
}

// requireCaller refuses a request no verified peer sent.
func requireCaller(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := Caller(r.Context()); !ok {
			api.WriteError(w, fmt.Errorf("%w: peer endpoints need a peer certificate of the cluster CA", api.ErrUnauthorized))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Transport returns the transport of calls to other peers over mutual
// TLS: tlsc presents this node's peer certificate and verifies the
// answering peer's (Identity.ClientTLS(ALPN, "")).
func Transport(tlsc *tls.Config, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Transport {
	return &http.Transport{
		DialContext:         dial,
		TLSClientConfig:     tlsc,
		TLSHandshakeTimeout: 5 * time.Second,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}
}
