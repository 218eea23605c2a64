package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// The results mode (--results) makes every increment durable before it is
// acknowledged: GET /?tag=T increments, appends "COUNT@T" to the
// workload's fenced results log under the counter's epoch (POST
// $LIFEBOAT_API/v1/workloads/$LIFEBOAT_WORKLOAD/results with
// X-Lifeboat-Epoch), and only then answers COUNT, with the epoch and the
// Raft index of its entry (X-Lifeboat-Index), by which a checker can tell
// an entry the log trimmed from one it lost. A refused append (409: the
// epoch is over, another holder owns the workload) answers 409 and the
// count is not acknowledged. On start the counter reads the log and
// continues past the largest count in it (the log trims its oldest
// entries, never its newest), so a restore from an older checkpoint never
// goes back past an acknowledged count. The Jepsen harness drives it.

// resultsLog appends to and reads the fenced results log.
type resultsLog struct {
	api, workload, epoch string
	token                string // LIFEBOAT_TOKEN: this workload's credential, when the API has tokens
	http                 *http.Client
}

func newResultsLog(api, workload, epoch string) (*resultsLog, error) {
	if api == "" || workload == "" || epoch == "" {
		return nil, errors.New("--results needs LIFEBOAT_API, LIFEBOAT_WORKLOAD and LIFEBOAT_EPOCH (run it under lifeboat)")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if f := os.Getenv("LIFEBOAT_CA_FILE"); f != "" { // the cluster CA the agent's HTTPS certificate is from
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("LIFEBOAT_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("LIFEBOAT_CA_FILE %s: no PEM certificate", f)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &resultsLog{api: strings.TrimSuffix(api, "/"), workload: workload, epoch: epoch,
		token: os.Getenv("LIFEBOAT_TOKEN"), http: &http.Client{Timeout: 5 * time.Second, Transport: tr}}, nil
}

// authorize sets the headers every call to the log carries: the epoch,
// and the workload's own token when it has one.
func (l *resultsLog) authorize(req *http.Request) {
	req.Header.Set("X-Lifeboat-Epoch", l.epoch)
	if l.token != "" {
		req.Header.Set("Authorization", "Bearer "+l.token)
	}
}

func (l *resultsLog) path() string {
	return l.api + "/v1/workloads/" + url.PathEscape(l.workload) + "/results"
}

// errStale is the log refusing our epoch.
var errStale = errors.New("the epoch is over: another holder owns the workload")

// append appends value under the counter's epoch and returns the Raft
// index of its entry.
func (l *resultsLog) append(ctx context.Context, value string) (uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.path(), strings.NewReader(value))
	if err != nil {
		return 0, err
	}
	l.authorize(req)
	req.Header.Set("Content-Type", "text/plain")
	resp, err := l.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode == http.StatusConflict:
		return 0, fmt.Errorf("%w: %s", errStale, strings.TrimSpace(string(body)))
	case resp.StatusCode/100 != 2:
		return 0, fmt.Errorf("appending a result: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var entry struct {
		Index uint64 `json:"index"`
	}
	if err := json.Unmarshal(body, &entry); err != nil {
		// Appended all the same: only the index is unknown.
		return 0, nil
	}
	return entry.Index, nil
}

// highest reads the log and returns the largest count appended to it.
func (l *resultsLog) highest(ctx context.Context) (uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.path(), nil)
	if err != nil {
		return 0, err
	}
	l.authorize(req)
	resp, err := l.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("reading the results log: %s", resp.Status)
	}
	var entries []struct {
		Value string `json:"value"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&entries); err != nil {
		return 0, fmt.Errorf("reading the results log: %w", err)
	}
	var top uint64
	for _, e := range entries {
		n, _, ok := strings.Cut(e.Value, "@")
		if v, err := strconv.ParseUint(n, 10, 64); ok && err == nil && v > top {
			top = v
		}
	}
	return top, nil
}

// catchUp raises the count past the log's largest, retrying for a while:
// a counter that cannot read the log must not serve (it could repeat an
// acknowledged count), so it gives up and exits for the supervisor to
// restart it.
func (c *counter) catchUp(l *resultsLog, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		top, err := l.highest(ctx)
		cancel()
		if err == nil {
			c.mu.Lock()
			c.count = max(c.count, top)
			c.mu.Unlock()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// incrDurable is GET /?tag=T in results mode. Increments are serialised,
// so the log holds counts in order.
func (c *counter) incrDurable(w http.ResponseWriter, r *http.Request) {
	tag := r.URL.Query().Get("tag")
	if tag == "" || strings.Contains(tag, "@") || len(tag) > 64 {
		http.Error(w, "tag: required, at most 64 characters, no @", http.StatusBadRequest)
		return
	}
	c.appendMu.Lock()
	defer c.appendMu.Unlock()
	c.mu.Lock()
	c.count++
	n := c.count
	c.mu.Unlock()
	index, err := c.results.append(r.Context(), fmt.Sprintf("%d@%s", n, tag))
	if err != nil {
		code := http.StatusServiceUnavailable
		if errors.Is(err, errStale) {
			code = http.StatusConflict
		}
		http.Error(w, err.Error(), code)
		return
	}
	w.Header().Set("X-Lifeboat-Epoch", c.results.epoch)
	if index != 0 {
		w.Header().Set("X-Lifeboat-Index", strconv.FormatUint(index, 10))
	}
	fmt.Fprintln(w, n)
}
