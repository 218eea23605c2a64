package gossip

import (
	"math/bits"
	"slices"
	"strings"

	"github.com/hashicorp/memberlist"
)

// MemberState is a member's liveness as this node sees it.
type MemberState string

// Member states.
const (
	// MemberAlive: the member answers probes (or nothing says otherwise).
	MemberAlive MemberState = "alive"
	// MemberSuspect: this node's own probe of the member failed and the
	// member has not been heard from since; it is still a member. Only
	// suspicions this node raised itself are seen (see Gossip.Members).
	MemberSuspect MemberState = "suspect"
	// MemberDead: the cluster declared the member failed.
	MemberDead MemberState = "dead"
	// MemberLeft: the member left on purpose (Gossip.Leave).
	MemberLeft MemberState = "left"
)

// Member is one node of the gossip pool.
type Member struct {
	Name  string
	Addr  string // gossip IP
	Port  int    // gossip port
	Meta  Meta   // zero when the member's metadata could not be decoded
	State MemberState
}

// EventKind says what happened to a member.
type EventKind int

// Event kinds.
const (
	// EventJoin: a member appeared, or came back after being dead or left.
	EventJoin EventKind = iota + 1
	// EventUpdate: a member's metadata changed, or a suspicion of it cleared.
	EventUpdate
	// EventFail: a member was declared dead.
	EventFail
	// EventLeave: a member left on purpose.
	EventLeave
	// EventSuspect: this node suspects a member after a failed probe.
	EventSuspect
)

// String returns the lower-case name of k.
func (k EventKind) String() string {
	switch k {
	case EventJoin:
		return "join"
	case EventUpdate:
		return "update"
	case EventFail:
		return "fail"
	case EventLeave:
		return "leave"
	case EventSuspect:
		return "suspect"
	}
	return "unknown"
}

// Event reports a change of one member; Member is its state after it.
type Event struct {
	Kind   EventKind
	Member Member
}

// eventBuffer is the capacity of the Events channel.
const eventBuffer = 256

// memberRecord is what Gossip remembers of one member.
type memberRecord struct {
	member  Member // State is alive, dead or left; suspect is kept apart
	suspect bool   // this node suspects the (alive) member
	badMeta bool   // the member's last metadata failed to decode (warned)
}

// view returns the member as callers see it, sharing nothing.
func (r *memberRecord) view() Member {
	m := r.member
	if r.suspect && m.State == MemberAlive {
		m.State = MemberSuspect
	}
	m.Meta.Modes = slices.Clone(m.Meta.Modes)
	return m
}

// stateAfter is the state a member is in after an event of memberlist's.
var stateAfter = map[EventKind]MemberState{
	EventJoin:   MemberAlive,
	EventUpdate: MemberAlive,
	EventFail:   MemberDead,
	EventLeave:  MemberLeft,
}

// observe records what memberlist reported about n and emits the event.
// kind is EventJoin, EventUpdate or EventFail; a failure of a member whose
// metadata says it left becomes EventLeave, since memberlist v0.7.0 gives
// its event delegate no way to tell the two apart. memberlist calls this
// with its node lock held.
func (g *Gossip) observe(n *memberlist.Node, kind EventKind) {
	meta, err := DecodeMeta(n.Meta)
	if kind == EventFail && err == nil && meta.State == StateLeft {
		kind = EventLeave
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.members[n.Name]
	if !ok {
		r = &memberRecord{member: Member{Name: n.Name}}
		g.members[n.Name] = r
	}
	r.member.Addr, r.member.Port = n.Addr.String(), int(n.Port)
	r.member.State = stateAfter[kind]
	r.suspect = false
	g.setMetaLocked(r, meta, err)
	g.emitLocked(kind, r.view())
}

// setMetaLocked stores a member's decoded metadata, or the zero Meta and
// one warning when it does not decode.
func (g *Gossip) setMetaLocked(r *memberRecord, meta Meta, err error) {
	if err == nil {
		r.member.Meta, r.badMeta = meta, false
		return
	}
	if !r.badMeta {
		g.log.Warn("member metadata does not decode", "member", r.member.Name, "err", err)
	}
	r.member.Meta, r.badMeta = Meta{}, true
}

// setSuspect raises or clears this node's suspicion of an alive member.
// Raised from memberlist's probe goroutine (through its log), cleared by
// an ack or an alive message (memberlist's packet goroutines).
func (g *Gossip) setSuspect(name string, suspect bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.members[name]
	if !ok || r.member.State != MemberAlive || r.suspect == suspect {
		return
	}
	r.suspect = suspect
	kind := EventUpdate
	if suspect {
		kind = EventSuspect
	}
	g.emitLocked(kind, r.view())
}

// emitLocked sends an event without blocking; when the channel is full the
// event is dropped and counted (consumers reconcile from Members).
func (g *Gossip) emitLocked(kind EventKind, m Member) {
	if g.eventsClosed {
		return
	}
	select {
	case g.events <- Event{Kind: kind, Member: m}:
	default:
		g.dropped++
		if bits.OnesCount64(g.dropped) == 1 { // 1, 2, 4, 8 ...: not a flood
			g.log.Warn("event channel full, dropping events", "dropped", g.dropped)
		}
	}
}

// closeEventsLocked closes the Events channel once.
func (g *Gossip) closeEventsLocked() {
	if !g.eventsClosed {
		g.eventsClosed = true
		close(g.events)
	}
}

// Members returns every member this node has seen since it started,
// itself included, with its current state, sorted by name. Dead and left
// members stay listed (memberlist forgets them).
//
// MemberSuspect is shown only for suspicions this node raised itself:
// memberlist v0.7.0 keeps a node's suspect state private (the public
// Node.State field is never set), so a suspicion gossiped by another peer
// is not visible until it turns into dead.
func (g *Gossip) Members() []Member {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Member, 0, len(g.members))
	for _, r := range g.members {
		out = append(out, r.view())
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// NumAlive returns the number of members that are alive or suspect, this
// node included.
func (g *Gossip) NumAlive() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, r := range g.members {
		if r.member.State == MemberAlive {
			n++
		}
	}
	return n
}

// DroppedEvents returns how many events were dropped because the Events
// channel was full.
func (g *Gossip) DroppedEvents() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.dropped
}
