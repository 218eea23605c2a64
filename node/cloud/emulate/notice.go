package emulate

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"time"
)

// cloudKinds are the notices each cloud's metadata service can express.
var cloudKinds = map[string][]string{
	AWS:   {KindPreempt, KindRebalance, KindMaintenance, KindTerminate},
	GCP:   {KindPreempt, KindMaintenance},
	Azure: {KindPreempt, KindMaintenance, KindTerminate},
}

// DefaultDeadline is the time from a notice to the instance's end when the
// caller names none: AWS's two-minute spot warning, the thirty seconds GCP
// and Azure give a preempted VM.
func DefaultDeadline(cloud string) time.Duration {
	if cloud == AWS {
		return 2 * time.Minute
	}
	return 30 * time.Second
}

// notice is one scheduled or visible notice.
type notice struct {
	id       string
	kind     string
	at       time.Time   // when it appears
	deadline time.Time   // when the instance would end
	active   bool        // appeared
	acked    bool        // acknowledged (Azure StartRequests): gone from the document
	timer    *time.Timer // armed until it appears; nil once fired or stopped
}

// visible reports whether the metadata shows n now.
func (n *notice) visible() bool { return n.active && !n.acked }

// NoticeState is one notice as State and GET /lifeboat/state report it.
type NoticeState struct {
	ID       string    `json:"id"`
	Kind     string    `json:"kind"`
	At       time.Time `json:"at"`
	Deadline time.Time `json:"deadline"`
	// Active reports whether the notice has appeared in the metadata.
	Active bool `json:"active"`
	// Acked reports whether it was acknowledged (Azure) and so left the
	// document.
	Acked bool `json:"acked,omitempty"`
}

func (n *notice) state() NoticeState {
	return NoticeState{ID: n.id, Kind: n.kind, At: n.at, Deadline: n.deadline, Active: n.active, Acked: n.acked}
}

// State is what the emulator has done: GET /lifeboat/state.
type State struct {
	Cloud        string         `json:"cloud"`
	Region       string         `json:"region"`
	Zone         string         `json:"zone"`
	InstanceType string         `json:"instance_type"`
	InstanceID   string         `json:"instance_id"`
	Lifecycle    string         `json:"lifecycle"`
	Name         string         `json:"name"`
	Notices      []NoticeState  `json:"notices"`
	Acks         []string       `json:"acks"`
	Requests     map[string]int `json:"requests"`      // served, by URL path
	TokensIssued int            `json:"tokens_issued"` // AWS IMDSv2 tokens
	Incarnation  int            `json:"incarnation,omitempty"`
	Waiters      int            `json:"waiters"` // GCP requests blocked in wait_for_change
}

// State returns a copy of the emulator's state.
func (e *Emulator) State() State {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := State{
		Cloud: e.cfg.Cloud, Region: e.cfg.Region, Zone: e.cfg.Zone, InstanceType: e.cfg.InstanceType,
		InstanceID: e.cfg.InstanceID, Lifecycle: e.cfg.Lifecycle, Name: e.cfg.Name,
		Notices: []NoticeState{}, Acks: slices.Clone(e.acks), Requests: maps.Clone(e.requests),
		TokensIssued: e.tokensIssue, Waiters: e.waiting,
	}
	if s.Acks == nil {
		s.Acks = []string{}
	}
	if e.cfg.Cloud == Azure {
		s.Incarnation = e.incarnation
	}
	for _, n := range e.notices {
		s.Notices = append(s.Notices, n.state())
	}
	return s
}

// Notice makes a notice of kind appear now, with the instance ending at
// deadline (zero: now plus DefaultDeadline).
func (e *Emulator) Notice(kind string, deadline time.Time) error {
	_, err := e.Schedule(kind, time.Time{}, deadline)
	return err
}

// Schedule makes a notice of kind appear at at (zero or past: now) with the
// instance ending at deadline (zero: at plus DefaultDeadline). A notice in
// the future waits on a timer Close and Reset stop.
func (e *Emulator) Schedule(kind string, at, deadline time.Time) (NoticeState, error) {
	return e.schedule(kind, at, deadline, e.cfg.Now())
}

// schedule is Schedule with the clock read once by the caller.
func (e *Emulator) schedule(kind string, at, deadline, now time.Time) (NoticeState, error) {
	if err := e.supports(kind); err != nil {
		return NoticeState{}, err
	}
	if at.IsZero() || at.Before(now) {
		at = now
	}
	if deadline.IsZero() {
		deadline = at.Add(DefaultDeadline(e.cfg.Cloud))
	}
	if deadline.Before(at) {
		return NoticeState{}, fmt.Errorf("%w: deadline %s is before the notice appears (%s)", ErrBadNotice,
			deadline.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
	}
	n := &notice{id: e.newID(kind), kind: kind, at: at.UTC(), deadline: deadline.UTC()}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return NoticeState{}, ErrClosed
	}
	e.notices = append(e.notices, n)
	if d := at.Sub(now); d > 0 {
		e.timers.Add(1)
		n.timer = time.AfterFunc(d, func() {
			defer e.timers.Done()
			e.fire(n)
		})
		e.log.Info("notice scheduled", "kind", kind, "id", n.id, "at", n.at, "deadline", n.deadline)
	} else {
		e.activateLocked(n)
	}
	return n.state(), nil
}

// scheduleSpec schedules a decoded control request, relative to now.
func (e *Emulator) scheduleSpec(spec NoticeSpec) (NoticeState, error) {
	now := e.cfg.Now()
	at := spec.At
	if at.IsZero() {
		at = now.Add(spec.In)
	}
	if at.Before(now) {
		at = now
	}
	var deadline time.Time
	if spec.DeadlineIn > 0 {
		deadline = at.Add(spec.DeadlineIn)
	}
	return e.schedule(spec.Kind, at, deadline, now)
}

// supports checks that this cloud and lifecycle can give kind.
func (e *Emulator) supports(kind string) error {
	switch {
	case !slices.Contains(Kinds, kind):
		return fmt.Errorf("%w: kind %q is not one of %v", ErrBadNotice, kind, Kinds)
	case !slices.Contains(cloudKinds[e.cfg.Cloud], kind):
		return fmt.Errorf("%w: %s gives no %s notice (it gives %v)", ErrUnsupportedNotice, e.cfg.Cloud, kind, cloudKinds[e.cfg.Cloud])
	case (kind == KindPreempt || kind == KindRebalance) && e.cfg.Lifecycle != Spot:
		return fmt.Errorf("%w: an on-demand instance gets no %s notice (emulate a spot instance)", ErrUnsupportedNotice, kind)
	}
	return nil
}

// fire is a notice timer's callback.
func (e *Emulator) fire(n *notice) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || n.timer == nil {
		return // stopped by Reset or Close after it fired
	}
	n.timer = nil
	e.activateLocked(n)
}

// activateLocked makes n appear in the metadata.
func (e *Emulator) activateLocked(n *notice) {
	n.active = true
	e.incarnation++
	e.notifyLocked()
	e.log.Info("notice", "kind", n.kind, "id", n.id, "deadline", n.deadline)
}

// stopTimerLocked disarms n's timer; a callback already running finds
// n.timer nil and does nothing.
func (e *Emulator) stopTimerLocked(n *notice) {
	if n.timer == nil {
		return
	}
	if n.timer.Stop() {
		e.timers.Done()
	}
	n.timer = nil
}

// Reset drops every notice (scheduled or visible), acknowledgement and
// request count; issued tokens stay valid and Azure's incarnation keeps
// counting up, as a real document's does.
func (e *Emulator) Reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	changed := false
	for _, n := range e.notices {
		e.stopTimerLocked(n)
		changed = changed || n.visible()
	}
	e.notices, e.acks, e.requests = nil, nil, map[string]int{}
	if changed {
		e.incarnation++
		e.notifyLocked()
	}
	e.log.Info("reset")
}

// Acks returns the Azure EventIds acknowledged with StartRequests, in order.
func (e *Emulator) Acks() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.acks)
}

// visibleLocked lists the visible notices of kind, oldest first.
func (e *Emulator) visibleLocked(kind string) []*notice {
	var out []*notice
	for _, n := range e.notices {
		if n.kind == kind && n.visible() {
			out = append(out, n)
		}
	}
	return out
}

// newID is an event id in the cloud's spelling: an AWS instance-event id,
// a UUID on Azure (and for notices that show no id).
func (e *Emulator) newID(kind string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	if e.cfg.Cloud == AWS && kind == KindMaintenance {
		return "instance-event-" + hex.EncodeToString(b)[:17]
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
