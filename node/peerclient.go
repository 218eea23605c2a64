package node

import (
	"net"
	"net/http"
	"time"

	"github.com/lifeboat/lifeboat/node/peer"
)

// newPeerClient is the client for calls to other peers' internal
// endpoints, over rt (nil: real sockets).
func newPeerClient(rt http.RoundTripper, token string) *peer.Client {
	if rt == nil {
		rt = &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     30 * time.Second,
		}
	}
	return peer.NewClient(&http.Client{Transport: rt}, token)
}
