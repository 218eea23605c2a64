package peer

import (
	"context"
	"errors"
	"fmt"
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
	scheme string
	token  string
	http   *http.Client
}

// NewClient returns a client that sends every call through hc (nil: the
// default transport) with the bearer token. This is the one place that
// says how peers reach each other; mutual TLS (issue 16) changes it here.
func NewClient(hc *http.Client, token string) *Client {
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{scheme: "http", token: token, http: hc}
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
	ac := &api.Client{Base: c.scheme + "://" + addr, Token: c.token, HTTP: c.http}
	err = ac.Do(ctx, http.MethodPost, path, body, "application/json", out)
	if op := (*net.OpError)(nil); errors.As(err, &op) && op.Op == "dial" {
		return fmt.Errorf("%w: %s: %v", api.ErrNoLeader, addr, op)
	}
	return err
}
