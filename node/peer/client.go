package peer

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/node/api"
)

// Client calls the endpoints of other peers. It is safe for concurrent
// use. Errors keep the sentinels of the answering peer (api.ErrNoLeader,
// fsm.ErrNotFound, ...); a request that could not be sent because the
// peer could not be dialled wraps api.ErrNoLeader (nothing was sent: a
// retry is safe); any other transport failure wraps api.ErrUnavailable
// (the outcome is unknown).
type Client struct {
	http *http.Client
	// certName names the peer a TLS answer came from, by its verified
	// certificate; nil only on the in-memory network of tests, which has
	// no TLS.
	certName func(*tls.ConnectionState) (string, error)
}

// NewClient returns a client that sends every call through hc: over
// mutual TLS with a peer certificate (Transport), and certName reads the
// answering peer's verified name. This is the one place that says how
// peers reach each other. In tests on the in-memory network hc carries
// the calls and certName is nil.
func NewClient(hc *http.Client, certName func(*tls.ConnectionState) (string, error)) *Client {
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{http: hc, certName: certName}
}

// ErrNotPeer means the peer at an address could not prove, by a
// certificate of the cluster CA, that it is the node it claims to be.
var ErrNotPeer = errors.New("peer: not proven")

// Prove checks that the peer at addr holds a peer certificate of the
// cluster CA naming name: the handshake proves the certificate and the
// role, and the certificate's name must be name.
func (c *Client) Prove(ctx context.Context, addr, name string) error {
	body, _ := encode(HelloRequest{})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+addr+pathHello, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %s at %s: %v", ErrNotPeer, name, addr, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s at %s: %v", ErrNotPeer, name, addr, err)
	}
	defer resp.Body.Close()
	var ans HelloAnswer
	if err := json.NewDecoder(io.LimitReader(resp.Body, limitSmall)).Decode(&ans); err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %s at %s answered %s", ErrNotPeer, name, addr, resp.Status)
	}
	got := ans.Name
	if c.certName != nil {
		if got, err = c.certName(resp.TLS); err != nil {
			return fmt.Errorf("%w: %s at %s: %v", ErrNotPeer, name, addr, err)
		}
	}
	if got != name {
		return fmt.Errorf("%w: the peer at %s is %s, not %s", ErrNotPeer, addr, got, name)
	}
	return nil
}

// Apply asks the leader at addr (host:port) to commit a command.
func (c *Client) Apply(ctx context.Context, addr string, req ApplyRequest) (ApplyAnswer, error) {
	var ans ApplyAnswer
	return ans, c.call(ctx, addr, pathApply, req, &ans)
}

// Lease asks the leader at addr to renew a node's lease.
func (c *Client) Lease(ctx context.Context, addr string, req LeaseRequest) (LeaseAnswer, error) {
	var ans LeaseAnswer
	return ans, c.call(ctx, addr, pathLease, req, &ans)
}

// Mirror asks the leader at addr for its state once newer than req.After.
func (c *Client) Mirror(ctx context.Context, addr string, req MirrorRequest) (MirrorAnswer, error) {
	var ans MirrorAnswer
	return ans, c.call(ctx, addr, pathMirror, req, &ans)
}

// Checkpoint asks the holder at addr for a checkpoint now.
func (c *Client) Checkpoint(ctx context.Context, addr string, req CheckpointRequest) (ActionAnswer, error) {
	var ans ActionAnswer
	return ans, c.call(ctx, addr, pathCheckpoint, req, &ans)
}

// Restart asks the holder at addr to restart a workload.
func (c *Client) Restart(ctx context.Context, addr string, req RestartRequest) (ActionAnswer, error) {
	var ans ActionAnswer
	return ans, c.call(ctx, addr, pathRestart, req, &ans)
}

// Migrate asks the holder at addr to move a workload.
func (c *Client) Migrate(ctx context.Context, addr string, req MigrateRequest) (ActionAnswer, error) {
	var ans ActionAnswer
	return ans, c.call(ctx, addr, pathMigrate, req, &ans)
}

// Send asks the node at addr to send a committed checkpoint to req.To.
func (c *Client) Send(ctx context.Context, addr string, req SendRequest) error {
	return c.call(ctx, addr, pathSend, req, nil)
}

// Results asks the leader at addr for a workload's results log and its
// trim point.
func (c *Client) Results(ctx context.Context, addr string, req ResultsRequest) (fsm.ResultsLog, error) {
	var ans fsm.ResultsLog
	return ans, c.call(ctx, addr, pathResults, req, &ans)
}

// Clock steps the test clock of the peer at addr.
func (c *Client) Clock(ctx context.Context, addr string, req ClockRequest) (ClockAnswer, error) {
	var ans ClockAnswer
	return ans, c.call(ctx, addr, pathClock, req, &ans)
}

// call validates req (a bad one is not sent), posts it and decodes the
// answer into out (if not nil).
func (c *Client) call(ctx context.Context, addr, path string, req request, out any) error {
	if err := req.Validate(); err != nil {
		return err
	}
	body, err := encode(req)
	if err != nil {
		return fmt.Errorf("%w: encoding the request to %s: %v", api.ErrBadRequest, path, err)
	}
	ac := &api.Client{Base: "https://" + addr, HTTP: c.http}
	err = ac.Do(ctx, http.MethodPost, path, body, "application/json", out)
	if op := (*net.OpError)(nil); errors.As(err, &op) && op.Op == "dial" {
		return fmt.Errorf("%w: %s: %v", api.ErrNoLeader, addr, op)
	}
	return err
}
