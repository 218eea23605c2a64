package gossip

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/gossip/gossiptest"
)

// testLog routes slog records into t.Log until the test's cleanups are
// done (memberlist's goroutines may log a little after Close) and counts
// records by message.
type testLog struct {
	mu     sync.Mutex
	t      testing.TB
	done   bool
	counts map[string]int
}

func newTestLog(t testing.TB) *testLog {
	l := &testLog{t: t, counts: make(map[string]int)}
	t.Cleanup(func() {
		l.mu.Lock()
		l.done = true
		l.mu.Unlock()
	})
	return l
}

// logger returns a logger writing into l at Info and above.
func (l *testLog) logger() *slog.Logger {
	h := slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelInfo})
	return slog.New(&countHandler{Handler: h, l: l})
}

// Write is the text handler's output.
func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

// count returns how many records had msg.
func (l *testLog) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[msg]
}

type countHandler struct {
	slog.Handler
	l *testLog
}

func (h *countHandler) Handle(ctx context.Context, r slog.Record) error {
	h.l.mu.Lock()
	h.l.counts[r.Message]++
	h.l.mu.Unlock()
	return h.Handler.Handle(ctx, r)
}

func (h *countHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &countHandler{Handler: h.Handler.WithAttrs(as), l: h.l}
}

func (h *countHandler) WithGroup(name string) slog.Handler {
	return &countHandler{Handler: h.Handler.WithGroup(name), l: h.l}
}

// recorder keeps every event of one Gossip; its goroutine ends when Close
// closes the channel.
type recorder struct {
	mu     sync.Mutex
	events []Event
	at     []time.Time
	done   chan struct{}
}

func record(ch <-chan Event) *recorder {
	r := &recorder{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for ev := range ch {
			r.mu.Lock()
			r.events = append(r.events, ev)
			r.at = append(r.at, time.Now())
			r.mu.Unlock()
		}
	}()
	return r
}

// find returns the first event of kind about name and when it arrived.
func (r *recorder) find(kind EventKind, name string) (Event, time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, ev := range r.events {
		if ev.Kind == kind && ev.Member.Name == name {
			return ev, r.at[i], true
		}
	}
	return Event{}, time.Time{}, false
}

// count returns how many events of kind about name arrived.
func (r *recorder) count(kind EventKind, name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ev := range r.events {
		if ev.Kind == kind && ev.Member.Name == name {
			n++
		}
	}
	return n
}

// waitEvent waits until n has received an event of kind about name.
func waitEvent(t testing.TB, n *testNode, kind EventKind, name string) (Event, time.Time) {
	t.Helper()
	var (
		ev Event
		at time.Time
		ok bool
	)
	waitFor(t, 10*time.Second, n.LocalName()+" gets "+kind.String()+" of "+name, func() bool {
		ev, at, ok = n.rec.find(kind, name)
		return ok
	})
	return ev, at
}

// testNode is a Gossip under test with its event recorder.
type testNode struct {
	*Gossip
	rec *recorder
}

// startNode creates a Gossip from cfg and closes it at cleanup.
func startNode(t testing.TB, cfg Config, meta Meta) *testNode {
	t.Helper()
	g, err := New(cfg, meta)
	if err != nil {
		t.Fatalf("New(%s): %v", cfg.Name, err)
	}
	n := &testNode{Gossip: g, rec: record(g.Events())}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Errorf("Close(%s): %v", cfg.Name, err)
		}
		<-n.rec.done
	})
	return n
}

// memCluster is a set of nodes on one in-memory gossiptest.Network.
type memCluster struct {
	log   *testLog
	net   *gossiptest.Network
	trans map[string]*gossiptest.Transport
}

func newMemCluster(t *testing.T, names ...string) *memCluster {
	c := &memCluster{log: newTestLog(t), net: new(gossiptest.Network), trans: make(map[string]*gossiptest.Transport)}
	for _, name := range names {
		c.trans[name] = c.net.NewTransport(name)
	}
	return c
}

func (c *memCluster) config(name string) Config {
	cfg := DefaultTestConfig()
	cfg.Name = name
	cfg.Transport = c.trans[name]
	cfg.Logger = c.log.logger()
	return cfg
}

func (c *memCluster) start(t *testing.T, name string, meta Meta) *testNode {
	return startNode(t, c.config(name), meta)
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// memberOf returns the member called name in g's view.
func memberOf(g *Gossip, name string) (Member, bool) {
	for _, m := range g.Members() {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}

// hasState reports whether g sees name in state s.
func hasState(g *Gossip, name string, s MemberState) bool {
	m, ok := memberOf(g, name)
	return ok && m.State == s
}

// nodeMeta is a realistic Meta for test node i.
func nodeMeta(i int) Meta {
	return Meta{
		Cloud: CloudAWS, Region: "eu-west-1", Zone: fmt.Sprintf("eu-west-1%c", 'a'+i),
		InstanceID: fmt.Sprintf("i-%017x", i), InstanceType: "m7i.large", Lifecycle: LifecycleSpot,
		MemoryMiB: 8192, CPUMillis: 2000, Addr: fmt.Sprintf("10.0.0.%d", i+1),
		RaftPort: 7947, TransferPort: 7948, HTTPPort: 7949, IngressPort: 7950,
		State: StateAlive, Role: RoleMember, Modes: []string{ModeCRIU, ModeApp},
	}
}
