// Package traffic drives the clients of a Jepsen run against the counter
// workloads (examples/counter --results) and the admin API, and records
// every operation in the history: increments on the holder and through a
// random host's ingress, probes of
// every host's counter port (who serves, under which epoch), linearizable
// reads of the fenced results log, and appends under epochs known to be
// over (which must be refused).
package traffic

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lifeboat/lifeboat/jepsen/history"
	"github.com/lifeboat/lifeboat/node/api"
)

// Host is one host as the clients reach it.
type Host struct {
	Name string
	IP   string
}

func (h Host) api() string { return "https://" + net.JoinHostPort(h.IP, "7949") }

// Config sizes the traffic.
type Config struct {
	Hosts []Host
	// Ports is each workload's counter port (the same on every host).
	Ports map[string]int
	// Listen is each workload's ingress port (every host's ingress
	// listens on it); for each workload with one, an extra client sends
	// its increments through a random host's ingress.
	Listen map[string]int
	// Clients is the number of increment clients per workload.
	Clients int
	// IncrEvery, ProbeEvery, ReadEvery and StaleEvery pace each client.
	IncrEvery, ProbeEvery, ReadEvery, StaleEvery time.Duration
	// Timeout bounds one request.
	Timeout time.Duration
	// TLS verifies the admin API and authenticates to it
	// (cluster.Cluster.APITLS).
	TLS *tls.Config
	// Seed makes the clients' choices repeatable.
	Seed uint64
}

// DefaultConfig is a light load: about ten increments a second per
// workload, so a two-minute run's log outgrows the 1000 entries a
// workload keeps and the reads report what was trimmed.
func DefaultConfig() Config {
	return Config{Clients: 2, IncrEvery: 300 * time.Millisecond, ProbeEvery: 50 * time.Millisecond,
		ReadEvery: time.Second, StaleEvery: 500 * time.Millisecond, Timeout: 2 * time.Second, Seed: 1}
}

// Validate names what is wrong.
func (c Config) Validate() error {
	switch {
	case len(c.Hosts) == 0:
		return errors.New("traffic: no hosts")
	case len(c.Ports) == 0:
		return errors.New("traffic: no workloads")
	case c.Clients < 1 || c.IncrEvery <= 0 || c.ProbeEvery <= 0 || c.ReadEvery <= 0 || c.StaleEvery <= 0 || c.Timeout <= 0:
		return errors.New("traffic: clients and intervals must be > 0")
	}
	return nil
}

// Traffic runs the clients; Stop ends them.
type Traffic struct {
	cfg  Config
	hist *history.History
	http *http.Client
	wg   sync.WaitGroup
	stop context.CancelFunc

	mu     sync.Mutex
	holder map[string]Host            // workload → the host believed to hold it
	epochs map[string]map[uint64]bool // workload → epochs seen serving
	client int
}

// Start starts the clients; they run until Stop or ctx ends.
func Start(ctx context.Context, cfg Config, hist *history.History) (*Traffic, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	t := &Traffic{cfg: cfg, hist: hist, stop: cancel,
		http:   &http.Client{Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: cfg.TLS}},
		holder: map[string]Host{}, epochs: map[string]map[uint64]bool{}}
	r := rand.New(rand.NewPCG(cfg.Seed, 0))
	for id := range cfg.Ports {
		t.epochs[id] = map[uint64]bool{}
		for range cfg.Clients {
			t.run(ctx, cfg.IncrEvery, r.Uint64(), func(c int, seq int, r *rand.Rand) { t.incr(ctx, c, seq, id, r) })
		}
		if cfg.Listen[id] > 0 {
			t.run(ctx, cfg.IncrEvery, r.Uint64(), func(c int, seq int, r *rand.Rand) { t.incrViaIngress(ctx, c, seq, id, r) })
		}
		t.run(ctx, cfg.ReadEvery, r.Uint64(), func(c, _ int, r *rand.Rand) { t.read(ctx, c, id, r) })
		t.run(ctx, cfg.StaleEvery, r.Uint64(), func(c, seq int, _ *rand.Rand) { t.stale(ctx, c, seq, id) })
		for _, h := range cfg.Hosts {
			t.run(ctx, cfg.ProbeEvery, r.Uint64(), func(c, _ int, _ *rand.Rand) { t.probe(ctx, c, id, h) })
		}
	}
	return t, nil
}

// Stop ends every client and waits for them.
func (t *Traffic) Stop() {
	t.stop()
	t.wg.Wait()
}

// run starts one client calling op every `every` until ctx ends.
func (t *Traffic) run(ctx context.Context, every time.Duration, seed uint64, op func(client, seq int, r *rand.Rand)) {
	t.mu.Lock()
	t.client++
	c := t.client
	t.mu.Unlock()
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		r := rand.New(rand.NewPCG(seed, uint64(c)))
		tick := time.NewTicker(every)
		defer tick.Stop()
		for seq := 0; ; seq++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			op(c, seq, r)
		}
	}()
}

// Final reads every workload's results log once more, retrying through
// every host until one answers, for the checkers' final state.
func (t *Traffic) Final(ctx context.Context) error {
	var errs []error
	for id := range t.cfg.Ports {
		ok := false
		for attempt := 0; attempt < 20 && !ok && ctx.Err() == nil; attempt++ {
			h := t.cfg.Hosts[attempt%len(t.cfg.Hosts)]
			if op := t.readFrom(ctx, -1, id, h); op.Outcome == history.Ok {
				ok = true
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if !ok {
			errs = append(errs, fmt.Errorf("no host answered the final read of %s", id))
		}
	}
	return errors.Join(errs...)
}

// incr asks the believed holder to increment; a refused connection or an
// answer from a non-holder refreshes the belief from the admin API.
func (t *Traffic) incr(ctx context.Context, c, seq int, id string, r *rand.Rand) {
	h, ok := t.believedHolder(id)
	if !ok {
		if h, ok = t.lookupHolder(ctx, id, r); !ok {
			return
		}
	}
	op := t.sendIncr(ctx, c, seq, id, h, t.cfg.Ports[id])
	if op.Outcome != history.Ok {
		t.forgetHolder(id)
	}
	t.hist.Add(op)
}

// incrViaIngress sends an increment to a random host's ingress, which
// passes it to whoever holds the workload (holding it during a move).
func (t *Traffic) incrViaIngress(ctx context.Context, c, seq int, id string, r *rand.Rand) {
	h := t.cfg.Hosts[r.IntN(len(t.cfg.Hosts))]
	op := t.sendIncr(ctx, c, seq, id, h, t.cfg.Listen[id])
	op.Via = "ingress"
	t.hist.Add(op)
}

// sendIncr sends one increment to h's port and records its outcome.
func (t *Traffic) sendIncr(ctx context.Context, c, seq int, id string, h Host, port int) history.Op {
	tag := fmt.Sprintf("c%d-%d", c, seq)
	op := history.Op{Client: c, Kind: history.KindIncr, Workload: id, Host: h.Name, Tag: tag}
	u := fmt.Sprintf("http://%s/?tag=%s", net.JoinHostPort(h.IP, strconv.Itoa(port)), url.QueryEscape(tag))
	t.do(ctx, &op, http.MethodGet, u, nil, nil, func(status int, body []byte, hdr http.Header) {
		op.Status = status
		switch {
		case status == http.StatusOK:
			op.Outcome = history.Ok
			op.Value, _ = strconv.ParseInt(strings.TrimSpace(string(body)), 10, 64)
			op.Epoch, _ = strconv.ParseUint(hdr.Get("X-Lifeboat-Epoch"), 10, 64)
			op.Index, _ = strconv.ParseUint(hdr.Get("X-Lifeboat-Index"), 10, 64)
			t.sawEpoch(id, op.Epoch)
		case status == http.StatusConflict || status == http.StatusBadRequest:
			op.Outcome = history.Fail // the log refused it (or the request was bad): not appended
		default:
			op.Outcome = history.Unknown // the counter's append may have gone through
		}
	})
	return op
}

// probe asks one host's counter port who serves, under which epoch.
func (t *Traffic) probe(ctx context.Context, c int, id string, h Host) {
	op := history.Op{Client: c, Kind: history.KindProbe, Workload: id, Host: h.Name}
	u := "http://" + net.JoinHostPort(h.IP, strconv.Itoa(t.cfg.Ports[id])) + "/value"
	pctx, cancel := context.WithTimeout(ctx, min(t.cfg.Timeout, 250*time.Millisecond))
	defer cancel()
	t.do(pctx, &op, http.MethodGet, u, nil, nil, func(status int, body []byte, hdr http.Header) {
		op.Status = status
		if status != http.StatusOK {
			op.Outcome = history.Fail
			return
		}
		op.Outcome = history.Ok
		op.Value, _ = strconv.ParseInt(strings.TrimSpace(string(body)), 10, 64)
		op.Epoch, _ = strconv.ParseUint(hdr.Get("X-Lifeboat-Epoch"), 10, 64)
		t.sawEpoch(id, op.Epoch)
	})
	if op.Outcome == history.Ok {
		t.setHolder(id, h)
	}
	if ctx.Err() == nil && op.Outcome != history.Unknown {
		// Only answers are worth keeping: a probe that found nothing
		// listening says nothing a checker uses, and there are many.
		if op.Outcome == history.Ok {
			t.hist.Add(op)
		}
	}
}

// read reads the results log through a random host's admin API.
func (t *Traffic) read(ctx context.Context, c int, id string, r *rand.Rand) {
	t.readFrom(ctx, c, id, t.cfg.Hosts[r.IntN(len(t.cfg.Hosts))])
}

func (t *Traffic) readFrom(ctx context.Context, c int, id string, h Host) history.Op {
	op := history.Op{Client: c, Kind: history.KindRead, Workload: id, Host: h.Name}
	u := h.api() + "/v1/workloads/" + url.PathEscape(id) + "/results"
	t.do(ctx, &op, http.MethodGet, u, nil, nil, func(status int, body []byte, hdr http.Header) {
		op.Status = status
		if status != http.StatusOK {
			op.Outcome = history.Fail // a read has no effect: a failed one is simply not there
			return
		}
		if err := json.Unmarshal(body, &op.Log); err != nil {
			op.Outcome, op.Error = history.Fail, "decoding the log: "+err.Error()
			return
		}
		// Absent, they read as nothing trimmed: the checkers then call a
		// trimmed entry missing, never a missing one trimmed.
		op.Trimmed, _ = strconv.ParseUint(hdr.Get(api.HeaderResultsTrimmed), 10, 64)
		op.TrimmedThrough, _ = strconv.ParseUint(hdr.Get(api.HeaderResultsTrimmedThrough), 10, 64)
		op.Outcome = history.Ok
	})
	if op.Outcome == history.Unknown {
		op.Outcome = history.Fail // likewise
	}
	t.hist.Add(op)
	return op
}

// stale appends under the newest epoch this client knows is over — one
// below an epoch seen serving — which the log must refuse with 409.
func (t *Traffic) stale(ctx context.Context, c, seq int, id string) {
	epoch, ok := t.overEpoch(id)
	if !ok {
		return
	}
	h := t.cfg.Hosts[seq%len(t.cfg.Hosts)]
	tag := fmt.Sprintf("stale-c%d-%d", c, seq)
	op := history.Op{Client: c, Kind: history.KindStale, Workload: id, Host: h.Name, Epoch: epoch, Tag: tag}
	u := h.api() + "/v1/workloads/" + url.PathEscape(id) + "/results"
	hdr := http.Header{"X-Lifeboat-Epoch": {strconv.FormatUint(epoch, 10)}, "Content-Type": {"text/plain"}}
	t.do(ctx, &op, http.MethodPost, u, []byte(tag), hdr, func(status int, _ []byte, _ http.Header) {
		op.Status = status
		switch {
		case status/100 == 2:
			op.Outcome = history.Ok // accepted: a violation the checker reports
		case status == http.StatusConflict:
			op.Outcome = history.Fail
		default:
			op.Outcome = history.Unknown
		}
	})
	if op.Outcome == history.Unknown && op.Status == 0 {
		return // never reached a peer that answered: tells nothing
	}
	t.hist.Add(op)
}

// do sends one request, timing it into op; a transport failure sets the
// outcome (dial refused: Fail; anything else: Unknown).
func (t *Traffic) do(ctx context.Context, op *history.Op, method, u string, body []byte, hdr http.Header, answer func(int, []byte, http.Header)) {
	rctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	op.Invoke = t.hist.Since(time.Now())
	defer func() { op.Complete = t.hist.Since(time.Now()) }()
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	req, err := http.NewRequestWithContext(rctx, method, u, rd)
	if err != nil {
		op.Outcome, op.Error = history.Fail, err.Error()
		return
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := t.http.Do(req)
	if err != nil {
		op.Error = err.Error()
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "dial" {
			op.Outcome = history.Fail
		} else {
			op.Outcome = history.Unknown
		}
		return
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		op.Outcome, op.Error, op.Status = history.Unknown, err.Error(), resp.StatusCode
		return
	}
	answer(resp.StatusCode, b, resp.Header)
}

func (t *Traffic) believedHolder(id string) (Host, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h, ok := t.holder[id]
	return h, ok
}

func (t *Traffic) setHolder(id string, h Host) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.holder[id] = h
}

func (t *Traffic) forgetHolder(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.holder, id)
}

// lookupHolder asks a random host's admin API who holds id.
func (t *Traffic) lookupHolder(ctx context.Context, id string, r *rand.Rand) (Host, bool) {
	h := t.cfg.Hosts[r.IntN(len(t.cfg.Hosts))]
	rctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, h.api()+"/v1/workloads/"+url.PathEscape(id), nil)
	if err != nil {
		return Host{}, false
	}
	resp, err := t.http.Do(req)
	if err != nil {
		return Host{}, false
	}
	defer resp.Body.Close()
	var w struct {
		Holder string `json:"holder"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&w) != nil {
		return Host{}, false
	}
	for _, c := range t.cfg.Hosts {
		if c.Name == w.Holder {
			t.setHolder(id, c)
			return c, true
		}
	}
	return Host{}, false
}

func (t *Traffic) sawEpoch(id string, e uint64) {
	if e == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.epochs[id][e] = true
}

// overEpoch is the newest epoch seen serving that a newer one has
// followed: a newer grant tombstoned it.
func (t *Traffic) overEpoch(id string) (uint64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var top, second uint64
	for e := range t.epochs[id] {
		switch {
		case e > top:
			top, second = e, top
		case e > second:
			second = e
		}
	}
	return second, second != 0
}
