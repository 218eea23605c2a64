package node

import (
	"crypto/sha256"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/lifeboat/lifeboat/node/api"
	"github.com/lifeboat/lifeboat/node/peer"
	"github.com/lifeboat/lifeboat/transfer"
)

// apiAuth is who may call the admin API: the tokens, a client certificate
// of the cluster CA, and the key of the workloads' own tokens.
func (n *Node) apiAuth() api.Auth {
	return api.Auth{Write: n.cfg.APIToken, Read: n.cfg.APIReadToken, WorkloadKey: n.workloadKey(),
		ClientCert: func(r *http.Request) bool {
			_, ok := transfer.ClientRole(r.TLS)
			return ok
		}}
}

// workloadKey keys the workloads' results tokens: the same on every peer,
// so a workload moved elsewhere keeps a valid one. It is derived from the
// write token or, without one, from the first gossip key (the one `ca
// issue` hands every peer); with neither, workloads get no token.
func (n *Node) workloadKey() []byte {
	var secret []byte
	switch {
	case n.cfg.APIToken != "":
		secret = []byte(n.cfg.APIToken)
	case len(n.cfg.GossipKeys) > 0:
		secret = n.cfg.GossipKeys[0]
	default:
		return nil
	}
	k := sha256.Sum256(append([]byte("lifeboat workload tokens\x00"), secret...))
	return k[:]
}

// apiScheme is how clients reach the admin API.
func (n *Node) apiScheme() string {
	if n.cfg.InsecureAPI {
		return "http"
	}
	return "https"
}

// workloadEnv is what every workload is told about its agent: the admin
// API's URL and the CA that signed its certificate.
func (n *Node) workloadEnv() []string {
	env := []string{"LIFEBOAT_API=" + n.apiScheme() + "://" + net.JoinHostPort(n.cfg.advertise(), strconv.Itoa(n.cfg.HTTPPort))}
	if n.cfg.CAFile != "" && !n.cfg.InsecureAPI {
		env = append(env, "LIFEBOAT_CA_FILE="+n.cfg.CAFile)
	}
	return env
}

// startPeer serves the peer endpoints (node/peer) on the Raft port, to
// connections that proved a peer certificate of the cluster CA.
func (n *Node) startPeer() error {
	h := api.WithBodyTimeout(peer.NewHandler(peerHandler{n}, peer.Options{Name: n.cfg.Name, UnsafeClockControl: n.cfg.Unsafe.ClockControl}),
		api.BodyTimeout)
	if n.cfg.Net != nil {
		n.cfg.Net.ServeHTTP(n.raftAddr(), h)
		return nil
	}
	n.peerSrv = &http.Server{Handler: h, ConnContext: peer.ConnContext, ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout: 2 * time.Minute, ErrorLog: httpErrorLog(n.log, "peer")}
	n.serve(n.peerSrv, n.peerLn, "peer endpoints")
	return nil
}

// startHTTP serves the admin API: HTTPS with this node's certificate, or
// plain HTTP on loopback with Config.InsecureAPI.
func (n *Node) startHTTP() error {
	n.api = api.NewServer(n, n.apiAuth(), n.metrics.handler())
	// A body has api.BodyTimeout to arrive, per request, and the handler
	// then as long as it needs (a migrate waits minutes): not the server's
	// ReadTimeout, one deadline for every request, bodiless or streaming.
	h := api.WithBodyTimeout(n.metrics.instrument(n.api), api.BodyTimeout)
	n.httpSrv = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: httpErrorLog(n.log, "api")}
	if n.cfg.Net != nil {
		n.cfg.Net.ServeHTTP(n.HTTPAddr(), h)
		return nil
	}
	addr := net.JoinHostPort(n.cfg.BindAddr, strconv.Itoa(n.cfg.HTTPPort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("http-port: listening on %s: %w", addr, err)
	}
	if n.cfg.InsecureAPI {
		n.log.Warn("THE ADMIN API IS PLAIN HTTP (--insecure-api): anyone on this host can read its traffic; for experiments only",
			"addr", addr)
	} else {
		n.httpSrv.TLSConfig = n.cfg.TLS.APIServerTLS()
		if err := n.cfg.TLS.Leaf.VerifyHostname(n.addr); err != nil {
			n.log.Warn("this node's certificate does not name its advertise address: clients that reach the admin API there cannot verify it (issue it with `lifeboat ca issue NAME --ip IP`)",
				"addr", n.addr, "err", err)
		}
	}
	n.serve(n.httpSrv, ln, "admin API")
	return nil
}

// serve runs srv on ln until Close shuts it down.
func (n *Node) serve(srv *http.Server, ln net.Listener, what string) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		var err error
		if srv.TLSConfig != nil {
			err = srv.ServeTLS(ln, "", "") // HTTP/2 and HTTP/1.1 over TLS
		} else {
			err = srv.Serve(ln)
		}
		if ignoreClosed(err) != nil {
			n.log.Error(what+" stopped", "err", err)
		}
	}()
}

// httpErrorLog sends net/http's own complaints (a failed TLS handshake, a
// malformed request) to the node's log as warnings.
func httpErrorLog(l *slog.Logger, part string) *log.Logger {
	return slog.NewLogLogger(l.With("part", part).Handler(), slog.LevelWarn)
}
