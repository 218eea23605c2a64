package node

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/gossip"
	"github.com/lifeboat/lifeboat/internal/monotime"
	"github.com/lifeboat/lifeboat/node/api"
	"github.com/lifeboat/lifeboat/node/peer"
)

// fakeHost is the node as the evacuation sees it: commands go straight
// into a replica, moves are recorded and succeed (or fail with
// migrateErr) at once.
type fakeHost struct {
	t        *testing.T
	m        *fsm.Machine
	mu       sync.Mutex // guards idx and moves
	idx      uint64
	moves    []peer.MigrateRequest
	failMove error            // migrateVia's answer
	lease    monotime.Instant // leaseEnd of every node
	alive    map[string]gossip.Member
}

func (h *fakeHost) apply(_ context.Context, cmd fsm.Command) (uint64, json.RawMessage, error) {
	b, err := fsm.Encode(cmd)
	if err != nil {
		h.t.Error(err)
		return 0, nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.idx++
	return h.idx, nil, h.m.Apply(h.idx, b).Err
}

func (h *fakeHost) applyLogged(ctx context.Context, cmd fsm.Command) {
	if _, _, err := h.apply(ctx, cmd); err != nil {
		h.t.Errorf("%T: %v", cmd, err)
	}
}

func (h *fakeHost) migrateVia(_ context.Context, req peer.MigrateRequest) (api.ActionResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.moves = append(h.moves, req)
	return api.ActionResult{Workload: req.ID, Bytes: 1}, h.failMove
}

func (h *fakeHost) waitRunning(context.Context, string, uint64) error { return nil }
func (h *fakeHost) members() map[string]gossip.Member                 { return h.alive }
func (h *fakeHost) leaseEnd(string) monotime.Instant                  { return h.lease }

func (h *fakeHost) movesMade() []peer.MigrateRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.moves)
}

var evacNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// newTestEvacuation returns an evacuation over a replica holding nodes
// a, b and c (1024 MiB, 1000 millicores, each in its own zone), all alive
// in gossip, with self as the leader's name.
func newTestEvacuation(t *testing.T, self string) (*evacuation, *fakeHost) {
	h := &fakeHost{t: t, m: fsm.New(), alive: map[string]gossip.Member{}}
	for _, name := range []string{"a", "b", "c"} {
		h.applyLogged(context.Background(), fsm.NodeUpsert{Node: fsm.Node{Name: name, Zone: name,
			Capacity: fsm.Resources{MemoryMiB: 1024, CPUMillis: 1000}}, At: evacNow})
		h.alive[name] = gossip.Member{Name: name, State: gossip.MemberAlive}
	}
	cfg := evacConfigOf(DefaultConfig())
	cfg.Self = self
	d := evacDeps{host: h, replica: h.m, log: slog.New(slog.DiscardHandler), now: func() time.Time { return evacNow }, mono: monotime.Now,
		metrics: evacMetrics{moves: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "m"}, []string{"result"}),
			late: prometheus.NewCounter(prometheus.CounterOpts{Name: "l"}), preemptions: prometheus.NewCounter(prometheus.CounterOpts{Name: "p"})}}
	return newEvacuation(cfg, d), h
}

// place submits a workload and grants it to holder.
func (h *fakeHost) place(id, prio, holder string, mib int64) {
	ctx := context.Background()
	spec := fsm.WorkloadSpec{ID: id, Command: []string{"/bin/true"}, Priority: prio,
		Checkpoint: fsm.CheckpointPolicy{Mode: fsm.ModeApp}, Resources: fsm.Resources{MemoryMiB: mib}}.WithDefaults()
	h.applyLogged(ctx, fsm.WorkloadSubmit{Spec: spec, At: evacNow.Add(time.Duration(h.idx) * time.Second)})
	h.applyLogged(ctx, fsm.WorkloadGrant{Workload: id, Holder: holder, At: evacNow})
}

// A round moves what a draining node holds, most important first, to the
// other nodes, records each move, and frees its claims when done.
func TestEvacuateRound(t *testing.T) {
	e, h := newTestEvacuation(t, "b")
	h.place("low", fsm.PriorityBatch, "a", 16)
	h.place("vip", fsm.PriorityCritical, "a", 16)
	h.place("stay", fsm.PriorityBatch, "b", 16)
	h.applyLogged(context.Background(), fsm.NodeStateChange{Node: "a", State: fsm.NodeDraining, At: evacNow})
	e.evacuate(context.Background())
	e.wg.Wait()
	ms := h.m.Migrations()
	if len(ms) != 2 || ms[0].Workload != "vip" || ms[1].Workload != "low" {
		t.Fatalf("migrations %+v, want vip then low", ms)
	}
	for _, m := range ms {
		if m.From != "a" || m.To == "a" || m.To == "" || m.Reason != "drain" {
			t.Fatalf("migration %+v", m)
		}
	}
	if moves := h.movesMade(); len(moves) != 2 {
		t.Fatalf("moves %+v", moves)
	}
	if load := e.load(); len(load) != 0 {
		t.Fatalf("claims left after the moves: %v", load)
	}
	// The records keep the next round from starting the moves again.
	e.evacuate(context.Background())
	e.wg.Wait()
	if moves := h.movesMade(); len(moves) != 2 {
		t.Fatalf("moves started again: %+v", moves)
	}
}

// A leader that itself leaves does not evacuate: the next leader does.
func TestEvacuateNotByALeavingLeader(t *testing.T) {
	e, h := newTestEvacuation(t, "a")
	h.place("w", fsm.PriorityNormal, "a", 16)
	h.applyLogged(context.Background(), fsm.NodeStateChange{Node: "a", State: fsm.NodeDraining, At: evacNow})
	e.evacuate(context.Background())
	e.wg.Wait()
	if moves := h.movesMade(); len(moves) != 0 {
		t.Fatalf("a leaving leader moved %+v", moves)
	}
}

// With no room anywhere, less important work is parked to make room, and
// that room stays reserved for the evacuee.
func TestEvacuatePreempts(t *testing.T) {
	e, h := newTestEvacuation(t, "b")
	h.place("vip", fsm.PriorityCritical, "a", 600)
	h.place("fill-b", fsm.PriorityBatch, "b", 800)
	h.place("fill-c", fsm.PriorityBatch, "c", 800)
	h.applyLogged(context.Background(), fsm.NodeStateChange{Node: "a", State: fsm.NodeDraining, At: evacNow})
	e.evacuate(context.Background())
	e.wg.Wait()
	moves := h.movesMade()
	if len(moves) != 1 || !moves[0].Park || moves[0].To != "" || !strings.HasPrefix(moves[0].ID, "fill-") {
		t.Fatalf("moves %+v, want one park of a batch filler", moves)
	}
	if !e.reservedFor("vip", evacNow) {
		t.Fatal("the room made is not reserved for vip")
	}
	ms := h.m.Migrations()
	if len(ms) != 1 || ms[0].Reason != "preempted for vip (critical)" || ms[0].Phase != fsm.PhasePlanned {
		t.Fatalf("migrations %+v", ms)
	}
}

// A failed move is recorded failed and its room on the target is held
// for the retry.
func TestEvacuateFailedMoveKeepsTheRoom(t *testing.T) {
	e, h := newTestEvacuation(t, "b")
	h.failMove = errors.New("target unreachable")
	h.place("w", fsm.PriorityNormal, "a", 16)
	h.applyLogged(context.Background(), fsm.NodeStateChange{Node: "a", State: fsm.NodeDoomed, Deadline: evacNow.Add(time.Minute), At: evacNow})
	e.evacuate(context.Background())
	e.wg.Wait()
	ms := h.m.Migrations()
	if len(ms) != 1 || ms[0].Phase != fsm.PhaseFailed || ms[0].Reason != "doomed" || !strings.Contains(ms[0].Error, "unreachable") {
		t.Fatalf("migrations %+v", ms)
	}
	if e.busy("w") || !e.reservedFor("w", evacNow) {
		t.Fatalf("after the failure: busy %v, reserved %v; want free and reserved", e.busy("w"), e.reservedFor("w", evacNow))
	}
}

// A lost holder's work is re-granted only once its lease bound has
// passed; a node that left needs no wait.
func TestRecoverLost(t *testing.T) {
	e, h := newTestEvacuation(t, "b")
	h.place("w", fsm.PriorityNormal, "a", 16)
	h.place("v", fsm.PriorityNormal, "c", 16)
	h.applyLogged(context.Background(), fsm.LeaseExpire{Node: "a", At: evacNow})
	h.lease = monotime.Now().Add(time.Hour) // a may still hold its lease
	e.recoverLost(context.Background())
	e.wg.Wait()
	if w, _ := h.m.Workload("w"); w.Assignment.Holder != "a" {
		t.Fatalf("re-granted within the lease bound: %+v", w.Assignment)
	}
	h.lease = 0
	h.applyLogged(context.Background(), fsm.NodeStateChange{Node: "c", State: fsm.NodeLeft, At: evacNow})
	e.recoverLost(context.Background())
	e.wg.Wait()
	for _, id := range []string{"w", "v"} {
		if w, _ := h.m.Workload(id); w.Assignment.Holder != "b" {
			t.Fatalf("%s: %+v, want re-granted to b", id, w.Assignment)
		}
	}
	ms := h.m.Migrations()
	if len(ms) != 2 || ms[0].Reason != "lost" || ms[0].Phase != fsm.PhaseDone || ms[1].Phase != fsm.PhaseDone {
		t.Fatalf("migrations %+v", ms)
	}
	if load := e.load(); len(load) != 0 {
		t.Fatalf("claims left: %v", load)
	}
}
