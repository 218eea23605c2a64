package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/lifeboat/lifeboat/fsm"
)

// Client calls a peer's admin API. It is safe for concurrent use.
type Client struct {
	// Base is the peer's URL, for example http://127.0.0.1:7949.
	Base string
	// Token is the bearer token, if the API needs one.
	Token string
	// HTTP is the client used; nil means http.DefaultClient.
	HTTP *http.Client
}

// NewClient checks base and returns a client for it.
func NewClient(base, token string) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: --addr %q is not an http(s) URL like http://127.0.0.1:7949", ErrBadRequest, base)
	}
	return &Client{Base: strings.TrimRight(base, "/"), Token: token}, nil
}

// Status is GET /v1/status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.Do(ctx, http.MethodGet, "/v1/status", nil, "", &st)
	return st, err
}

// Workloads is GET /v1/workloads.
func (c *Client) Workloads(ctx context.Context) ([]Workload, error) {
	var ws []Workload
	err := c.Do(ctx, http.MethodGet, "/v1/workloads", nil, "", &ws)
	return ws, err
}

// Workload is GET /v1/workloads/{id}.
func (c *Client) Workload(ctx context.Context, id string) (Workload, error) {
	var w Workload
	err := c.Do(ctx, http.MethodGet, "/v1/workloads/"+url.PathEscape(id), nil, "", &w)
	return w, err
}

// Submit posts a spec (JSON or YAML, as contentType says).
func (c *Client) Submit(ctx context.Context, spec []byte, contentType string) (Workload, error) {
	var w Workload
	err := c.Do(ctx, http.MethodPost, "/v1/workloads", spec, contentType, &w)
	return w, err
}

// Remove is DELETE /v1/workloads/{id}.
func (c *Client) Remove(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/workloads/"+url.PathEscape(id), nil, "", nil)
}

// AppendResult posts a result under an epoch.
func (c *Client) AppendResult(ctx context.Context, id string, epoch uint64, value string) (Result, error) {
	var res Result
	req := func(r *http.Request) { r.Header.Set("X-Lifeboat-Epoch", strconv.FormatUint(epoch, 10)) }
	err := c.do(ctx, http.MethodPost, "/v1/workloads/"+url.PathEscape(id)+"/results", []byte(value), "text/plain", &res, req, nil)
	return res, err
}

// Results reads the workload's fenced results log (linearizably).
func (c *Client) Results(ctx context.Context, id string) ([]Result, error) {
	l, err := c.ResultsLog(ctx, id)
	return l.Results, err
}

// ResultsLog reads the workload's fenced results log (linearizably) with
// its trim point. From a server that does not report one, Trimmed and
// TrimmedThrough are 0.
func (c *Client) ResultsLog(ctx context.Context, id string) (ResultsLog, error) {
	var l ResultsLog
	var hdr http.Header
	err := c.do(ctx, http.MethodGet, "/v1/workloads/"+url.PathEscape(id)+"/results", nil, "", &l.Results, nil, &hdr)
	if err != nil {
		return ResultsLog{}, err
	}
	if l.Trimmed, err = headerUint(hdr, HeaderResultsTrimmed); err == nil {
		l.TrimmedThrough, err = headerUint(hdr, HeaderResultsTrimmedThrough)
	}
	return l, err
}

// headerUint is the unsigned integer in header name of h (0 if absent).
func headerUint(h http.Header, name string) (uint64, error) {
	v := h.Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("decoding the answer: header %s: %q is not an unsigned integer", name, v)
	}
	return n, nil
}

// Checkpoint asks the workload's holder for a checkpoint now.
func (c *Client) Checkpoint(ctx context.Context, id string) (ActionResult, error) {
	var res ActionResult
	err := c.Do(ctx, http.MethodPost, "/v1/workloads/"+url.PathEscape(id)+"/checkpoint", nil, "", &res)
	return res, err
}

// Restart restarts the workload on its holder.
func (c *Client) Restart(ctx context.Context, id string, fromCheckpoint bool) (ActionResult, error) {
	var res ActionResult
	body, _ := json.Marshal(RestartRequest{FromCheckpoint: fromCheckpoint})
	err := c.Do(ctx, http.MethodPost, "/v1/workloads/"+url.PathEscape(id)+"/restart", body, "application/json", &res)
	return res, err
}

// Drain is POST /v1/nodes/{name}/drain.
func (c *Client) Drain(ctx context.Context, node string) (DrainResult, error) {
	var res DrainResult
	err := c.Do(ctx, http.MethodPost, "/v1/nodes/"+url.PathEscape(node)+"/drain", nil, "", &res)
	return res, err
}

// Undrain is POST /v1/nodes/{name}/undrain.
func (c *Client) Undrain(ctx context.Context, node string) (DrainResult, error) {
	var res DrainResult
	err := c.Do(ctx, http.MethodPost, "/v1/nodes/"+url.PathEscape(node)+"/undrain", nil, "", &res)
	return res, err
}

// Migrations is GET /v1/migrations.
func (c *Client) Migrations(ctx context.Context) ([]fsm.Migration, error) {
	var ms []fsm.Migration
	err := c.Do(ctx, http.MethodGet, "/v1/migrations", nil, "", &ms)
	return ms, err
}

// Migrate moves the workload to node to and returns once it runs there.
func (c *Client) Migrate(ctx context.Context, id, to string) (ActionResult, error) {
	var res ActionResult
	body, _ := json.Marshal(MigrateRequest{To: to})
	err := c.Do(ctx, http.MethodPost, "/v1/workloads/"+url.PathEscape(id)+"/migrate", body, "application/json", &res)
	return res, err
}

// Result mirrors fsm.Result for clients.
type Result struct {
	Index uint64 `json:"index"`
	Epoch uint64 `json:"epoch"`
	Value string `json:"value"`
}

// ResultsLog mirrors fsm.ResultsLog for clients: the entries kept, oldest
// first, and the trim point before them (HeaderResultsTrimmed,
// HeaderResultsTrimmedThrough).
type ResultsLog struct {
	Trimmed        uint64
	TrimmedThrough uint64
	Results        []Result
}

// Do sends one request and decodes a JSON answer into out (if non-nil).
// An error answer becomes a *RemoteError that errors.Is matches against
// the package's and fsm's sentinels.
func (c *Client) Do(ctx context.Context, method, path string, body []byte, contentType string, out any) error {
	return c.do(ctx, method, path, body, contentType, out, nil, nil)
}

// do is Do with edit applied to the request (if not nil) and, if hdr is
// not nil, the answer's headers stored in it.
func (c *Client) do(ctx context.Context, method, path string, body []byte, contentType string, out any, edit func(*http.Request), hdr *http.Header) error {
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if edit != nil {
		edit(req)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		// Wrapped, not flattened: a caller may tell a failed dial (nothing
		// was sent) from a failure after the request left.
		return fmt.Errorf("%w: %s %s: %w", ErrUnavailable, method, c.Base+path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%w: reading the answer of %s: %v", ErrUnavailable, path, err)
	}
	if resp.StatusCode >= 300 {
		return decodeError(resp.StatusCode, data)
	}
	if hdr != nil {
		*hdr = resp.Header
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding the answer of %s: %w", path, err)
	}
	return nil
}

func decodeError(status int, data []byte) error {
	var eb ErrorBody
	if err := json.Unmarshal(data, &eb); err != nil || eb.Error.Code == "" {
		return &RemoteError{Code: "http_" + strconv.Itoa(status), Status: status,
			Message: fmt.Sprintf("HTTP %d: %s", status, bytes.TrimSpace(data))}
	}
	e := FromCode(eb.Error.Code, eb.Error.Message).(*RemoteError)
	e.Status = status
	return e
}
