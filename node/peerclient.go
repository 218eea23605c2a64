package node

import (
	"crypto/tls"
	"net"
	"net/http"
	"time"

	"github.com/lifeboat/lifeboat/node/peer"
	"github.com/lifeboat/lifeboat/transfer"
)

// newPeerClient is the client for calls to other peers' endpoints: over
// rt on the in-memory network of tests, else over mutual TLS with this
// node's peer certificate to the peers' Raft ports.
func newPeerClient(rt http.RoundTripper, id *transfer.Identity) *peer.Client {
	if rt != nil {
		return peer.NewClient(&http.Client{Transport: rt}, nil)
	}
	dial := (&net.Dialer{Timeout: 2 * time.Second}).DialContext
	tr := peer.Transport(id.ClientTLS(peer.ALPN, ""), dial)
	return peer.NewClient(&http.Client{Transport: tr}, certName)
}

// certName is the verified peer name of a TLS answer.
func certName(cs *tls.ConnectionState) (string, error) {
	if cs == nil {
		return "", transfer.ErrUntrusted
	}
	name, _, err := transfer.PeerName(*cs)
	return name, err
}
