package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/lifeboat/lifeboat/node/api"
)

// peerClient calls the internal endpoints of other peers.
type peerClient struct {
	http  *http.Client
	token string
}

// newPeerClient is the client for calls between peers over rt (nil: real
// sockets).
func newPeerClient(rt http.RoundTripper, token string) *peerClient {
	if rt == nil {
		rt = &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     30 * time.Second,
		}
	}
	return &peerClient{http: &http.Client{Transport: rt}, token: token}
}

// post sends body to another peer's internal endpoint and decodes the
// JSON answer into out. A dial failure wraps api.ErrNoLeader (nothing was
// sent); other failures wrap api.ErrUnavailable (outcome unknown).
func (c *peerClient) post(ctx context.Context, hostport, path string, body []byte, out any) error {
	ac := &api.Client{Base: "http://" + hostport, Token: c.token, HTTP: c.http}
	err := ac.Do(ctx, http.MethodPost, path, body, "application/octet-stream", out)
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return fmt.Errorf("%w: %v", api.ErrNoLeader, err)
	}
	return err
}
