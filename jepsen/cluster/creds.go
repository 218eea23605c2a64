package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// peerALPN is the protocol of the agents' peer endpoints on the Raft port
// (node/peer.ALPN), which the harness speaks only to step a test clock.
const peerALPN = "lifeboat-peer/1"

// creds are the harness's own certificates of the cluster CA: an
// operator's (role client) for the admin API, and a peer's for the
// peer-only test endpoint (the clock nemesis).
type creds struct {
	apiTLS *tls.Config  // the admin API's: the client certificate, the CA
	api    *http.Client // HTTPS to the admin API with the client certificate
	peer   *http.Client // mutual TLS to the peer endpoints with the peer certificate
}

// makeCreds issues the harness's certificates into dir/tls and builds
// its clients.
func makeCreds(bin, caDir, dir string) (*creds, error) {
	clientDir, peerDir := filepath.Join(dir, "tls", "_jepsen-client"), filepath.Join(dir, "tls", "_jepsen-peer")
	if err := runBin(bin, "ca", "issue", "jepsen-client", "--role", "client", "--ca", caDir, "--out", clientDir); err != nil {
		return nil, err
	}
	if err := runBin(bin, "ca", "issue", "jepsen-peer", "--ca", caDir, "--out", peerDir); err != nil {
		return nil, err
	}
	apiTLS, err := tlsConfig(clientDir, "")
	if err != nil {
		return nil, err
	}
	peerTLS, err := tlsConfig(peerDir, peerALPN)
	if err != nil {
		return nil, err
	}
	return &creds{apiTLS: apiTLS, api: httpClient(apiTLS.Clone()), peer: httpClient(peerTLS)}, nil
}

// httpClient is an HTTPS client over tc; HTTP/2 unless tc names another
// protocol. The transport adds "h2" to tc's protocols: tc must be its own
// (a transport of HTTP/1 only that offered h2 would get HTTP/2 frames).
func httpClient(tc *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: len(tc.NextProtos) == 0,
		MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}}
}

// tlsConfig presents the certificate in dir (ca.crt, node.crt, node.key,
// as `lifeboat ca issue` writes them) and trusts its CA.
func tlsConfig(dir, alpn string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "node.crt"), filepath.Join(dir, "node.key"))
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	pem, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("cluster: %s/ca.crt holds no certificate", dir)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, Certificates: []tls.Certificate{cert}}
	if alpn != "" {
		tc.NextProtos = []string{alpn}
	}
	return tc, nil
}
