package gossip

import (
	"errors"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/lifeboat/lifeboat/gossip/gossiptest"
)

// converge starts n1..n3 on an in-memory network and joins them through n1.
func converge(t *testing.T, c *memCluster) []*testNode {
	t.Helper()
	names := []string{"n1", "n2", "n3"}
	nodes := make([]*testNode, len(names))
	for i, name := range names {
		nodes[i] = c.start(t, name, nodeMeta(i))
	}
	for _, n := range nodes[1:] {
		if got, err := n.Join([]string{nodes[0].LocalAddr()}); err != nil || got != 1 {
			t.Fatalf("%s: Join = %d, %v", n.LocalName(), got, err)
		}
	}
	for _, n := range nodes {
		waitFor(t, 5*time.Second, n.LocalName()+" sees 3 alive", func() bool { return n.NumAlive() == 3 })
	}
	return nodes
}

func TestThreeNodesSeeEachOtherWithMeta(t *testing.T) {
	c := newMemCluster(t, "n1", "n2", "n3")
	nodes := converge(t, c)
	for _, n := range nodes {
		ms := n.Members()
		if len(ms) != 3 {
			t.Fatalf("%s sees %d members, want 3", n.LocalName(), len(ms))
		}
		for i, m := range ms {
			want := Member{Name: nodes[i].LocalName(), Meta: nodeMeta(i), State: MemberAlive}
			want.Addr, want.Port = m.Addr, m.Port
			if !reflect.DeepEqual(m, want) {
				t.Errorf("%s sees\n %+v\nwant %+v", n.LocalName(), m, want)
			}
			if m.Addr+":"+strconv.Itoa(m.Port) != nodes[i].LocalAddr() {
				t.Errorf("%s sees %s at %s:%d, want %s", n.LocalName(), m.Name, m.Addr, m.Port, nodes[i].LocalAddr())
			}
		}
		for _, other := range nodes {
			waitEvent(t, n, EventJoin, other.LocalName())
		}
	}
}

func TestUpdateMetaPropagates(t *testing.T) {
	c := newMemCluster(t, "n1", "n2", "n3")
	nodes := converge(t, c)
	m := nodeMeta(0)
	m.State, m.Deadline = StateDoomed, time.Now().Add(2*time.Minute).Truncate(time.Millisecond).UTC()
	m.Role, m.Leader, m.InRaft = RoleVoter, true, true
	if err := nodes[0].UpdateMeta(m); err != nil {
		t.Fatal(err)
	}
	if got := nodes[0].LocalMeta(); !reflect.DeepEqual(got, m) {
		t.Errorf("LocalMeta = %+v, want %+v", got, m)
	}
	for _, n := range nodes[1:] {
		waitFor(t, 5*time.Second, n.LocalName()+" sees n1 doomed", func() bool {
			got, _ := memberOf(n.Gossip, "n1")
			return reflect.DeepEqual(got.Meta, m)
		})
		if ev, _ := waitEvent(t, n, EventUpdate, "n1"); ev.Member.Meta.State != StateDoomed {
			t.Errorf("%s: first update event = %+v", n.LocalName(), ev)
		}
	}
}

func TestUpdateMetaRejectsBadMetaAndKeepsOld(t *testing.T) {
	c := newMemCluster(t, "n1")
	n := c.start(t, "n1", nodeMeta(0))
	bad := nodeMeta(0)
	bad.Modes = []string{"teleport"}
	if err := n.UpdateMeta(bad); !errors.Is(err, ErrInvalidMeta) {
		t.Fatalf("UpdateMeta = %v, want ErrInvalidMeta", err)
	}
	if got := n.LocalMeta(); !reflect.DeepEqual(got, nodeMeta(0)) {
		t.Errorf("LocalMeta changed to %+v", got)
	}
}

func TestClosedNodeIsDetectedDead(t *testing.T) {
	c := newMemCluster(t, "n1", "n2", "n3")
	nodes := converge(t, c)
	start := time.Now()
	if err := nodes[2].Close(); err != nil {
		t.Fatal(err)
	}
	survivors := nodes[:2]
	for _, n := range survivors {
		waitFor(t, 10*time.Second, n.LocalName()+" sees n3 dead", func() bool { return hasState(n.Gossip, "n3", MemberDead) })
	}
	t.Logf("n3 seen dead by all survivors after %v", time.Since(start).Round(time.Millisecond))
	suspected := false
	for _, n := range survivors {
		ev, at := waitEvent(t, n, EventFail, "n3")
		if ev.Member.State != MemberDead || ev.Member.Meta.Zone != "eu-west-1c" {
			t.Errorf("%s: fail event = %+v", n.LocalName(), ev)
		}
		t.Logf("%s: fail event after %v", n.LocalName(), at.Sub(start).Round(time.Millisecond))
		if _, sat, ok := n.rec.find(EventSuspect, "n3"); ok && !sat.After(at) {
			suspected = true
			t.Logf("%s: suspect event after %v", n.LocalName(), sat.Sub(start).Round(time.Millisecond))
		}
		if got := n.NumAlive(); got != 2 {
			t.Errorf("%s: NumAlive = %d, want 2", n.LocalName(), got)
		}
		if len(n.Members()) != 3 {
			t.Errorf("%s: dead member not kept in Members: %+v", n.LocalName(), n.Members())
		}
	}
	if !suspected {
		t.Error("no survivor reported n3 suspect before dead")
	}
}

func TestLeaveIsSeenAsLeft(t *testing.T) {
	c := newMemCluster(t, "n1", "n2", "n3")
	nodes := converge(t, c)
	leaver := nodes[2]
	if err := leaver.Leave(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes[:2] {
		waitFor(t, 5*time.Second, n.LocalName()+" sees n3 left", func() bool { return hasState(n.Gossip, "n3", MemberLeft) })
		if ev, _ := waitEvent(t, n, EventLeave, "n3"); ev.Member.Meta.State != StateLeft {
			t.Errorf("%s: leave event = %+v", n.LocalName(), ev)
		}
		if _, _, ok := n.rec.find(EventFail, "n3"); ok {
			t.Errorf("%s: a leave was reported as a failure", n.LocalName())
		}
	}
	if err := leaver.Leave(time.Second); err != nil {
		t.Errorf("second Leave: %v", err)
	}
	if err := leaver.UpdateMeta(nodeMeta(2)); !errors.Is(err, ErrLeft) {
		t.Errorf("UpdateMeta after Leave = %v, want ErrLeft", err)
	}
	if err := leaver.Close(); err != nil {
		t.Errorf("Close after Leave: %v", err)
	}
	if err := leaver.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := leaver.Leave(time.Second); !errors.Is(err, ErrClosed) {
		t.Errorf("Leave after Close = %v, want ErrClosed", err)
	}
	if _, err := leaver.Join([]string{nodes[0].LocalAddr()}); !errors.Is(err, ErrClosed) {
		t.Errorf("Join after Close = %v, want ErrClosed", err)
	}
	if err := leaver.UpdateMeta(nodeMeta(2)); !errors.Is(err, ErrClosed) {
		t.Errorf("UpdateMeta after Close = %v, want ErrClosed", err)
	}
}

func TestPartitionedNodeIsDeadAndRejoinsAfterHeal(t *testing.T) {
	c := newMemCluster(t, "n1", "n2", "n3")
	nodes := converge(t, c)
	c.net.Partition([]string{"n1", "n2"}, []string{"n3"})
	for _, n := range nodes[:2] {
		waitFor(t, 10*time.Second, n.LocalName()+" sees n3 dead", func() bool { return hasState(n.Gossip, "n3", MemberDead) })
	}
	waitFor(t, 10*time.Second, "n3 sees the others dead", func() bool { return nodes[2].NumAlive() == 1 })
	c.net.Heal()
	if _, err := nodes[2].Join([]string{nodes[0].LocalAddr()}); err != nil {
		t.Fatalf("re-join after heal: %v", err)
	}
	for _, n := range nodes {
		waitFor(t, 10*time.Second, n.LocalName()+" sees 3 alive again", func() bool { return n.NumAlive() == 3 })
	}
	waitFor(t, 5*time.Second, "a second join event of n3", func() bool { return nodes[0].rec.count(EventJoin, "n3") == 2 })
}

// garbageMeta is a memberlist delegate whose metadata is not a Meta.
type garbageMeta struct{ meta []byte }

func (g *garbageMeta) NodeMeta(int) []byte             { return g.meta }
func (g *garbageMeta) NotifyMsg([]byte)                {}
func (g *garbageMeta) GetBroadcasts(int, int) [][]byte { return nil }
func (g *garbageMeta) LocalState(bool) []byte          { return nil }
func (g *garbageMeta) MergeRemoteState([]byte, bool)   {}

func TestUndecodableMetaWarnsOnce(t *testing.T) {
	c := newMemCluster(t, "n1", "alien")
	n := c.start(t, "n1", nodeMeta(0))
	mc := memberlist.DefaultLANConfig()
	mc.Name, mc.Transport = "alien", c.trans["alien"]
	mc.Logger = newMemberlistLogger(c.log.logger().With("node", "alien"), nil)
	d := &garbageMeta{meta: []byte{0xde, 0xad}}
	mc.Delegate = d
	alien, err := memberlist.Create(mc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alien.Shutdown() })
	if _, err := alien.Join([]string{n.LocalAddr()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "n1 sees alien", func() bool { return hasState(n.Gossip, "alien", MemberAlive) })
	d.meta = []byte{0xbe, 0xef}
	if err := alien.UpdateNode(time.Second); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, n, EventUpdate, "alien")
	if m, _ := memberOf(n.Gossip, "alien"); !reflect.DeepEqual(m.Meta, Meta{}) {
		t.Errorf("alien meta = %+v, want zero", m.Meta)
	}
	if got := c.log.count("member metadata does not decode"); got != 1 {
		t.Errorf("%d warnings, want 1", got)
	}
}

func TestEventsDropWhenFullWithoutBlocking(t *testing.T) {
	cfg := DefaultTestConfig()
	cfg.Name = "solo"
	cfg.Transport = new(gossiptest.Network).NewTransport("solo")
	cfg.Logger = newTestLog(t).logger()
	g, err := New(cfg, nodeMeta(0))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	const updates = 300
	for i := 1; i <= updates; i++ {
		m := nodeMeta(0)
		m.MemoryMiB = int64(i)
		if err := g.UpdateMeta(m); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := g.DroppedEvents(), uint64(1+updates-eventBuffer); got != want {
		t.Errorf("DroppedEvents = %d, want %d", got, want)
	}
	if m, _ := memberOf(g, "solo"); m.Meta.MemoryMiB != updates {
		t.Errorf("Members shows memory %d, want %d", m.Meta.MemoryMiB, updates)
	}
	first := <-g.Events()
	if first.Kind != EventJoin || first.Member.Name != "solo" {
		t.Errorf("first event = %+v, want own join", first)
	}
}

func TestNewValidatesFirst(t *testing.T) {
	cfg := DefaultTestConfig()
	if _, err := New(cfg, Meta{}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("New without name = %v, want ErrInvalidConfig", err)
	}
	cfg.Name = "x"
	cfg.Transport = new(gossiptest.Network).NewTransport("x")
	if _, err := New(cfg, Meta{MemoryMiB: -1}); !errors.Is(err, ErrInvalidMeta) {
		t.Errorf("New with bad meta = %v, want ErrInvalidMeta", err)
	}
}

func TestWithDefaultPort(t *testing.T) {
	tests := map[string]string{
		"10.0.0.1":         "10.0.0.1:7946",
		"10.0.0.1:8000":    "10.0.0.1:8000",
		"peer.example":     "peer.example:7946",
		"::1":              "[::1]:7946",
		"[::1]":            "[::1]:7946",
		"[::1]:8000":       "[::1]:8000",
		"n2/10.0.0.2":      "n2/10.0.0.2:7946",
		"n2/10.0.0.2:7000": "n2/10.0.0.2:7000",
	}
	for in, want := range tests {
		if got := withDefaultPort(in, 7946); got != want {
			t.Errorf("withDefaultPort(%q) = %q, want %q", in, got, want)
		}
	}
}
