package peer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/node/api"
)

// The endpoints, all POST.
const (
	pathApply      = "/v1/internal/apply"
	pathLease      = "/v1/internal/lease"
	pathMirror     = "/v1/internal/mirror"
	pathCheckpoint = "/v1/internal/checkpoint"
	pathRestart    = "/v1/internal/restart"
	pathMigrate    = "/v1/internal/migrate"
	pathSend       = "/v1/internal/send"
	pathResults    = "/v1/internal/results"
	pathClock      = "/v1/internal/clock"
	pathHello      = "/v1/internal/hello"
)

// Handler is what the endpoints need from the node. The HTTP server calls
// it from its request goroutines, concurrently, with requests already
// decoded and validated; every method may block and must honour ctx. A
// request is the handler's to keep; what it returns the server only
// encodes. An error is answered with api.WriteError, so it should wrap an
// api or fsm sentinel (api.ErrNoLeader: safe to retry elsewhere).
type Handler interface {
	// Leads reports whether this peer leads the cluster now. Apply,
	// Lease, Mirror and Results are refused with api.ErrNoLeader when it
	// does not: Register checks once, after decoding (and, for Mirror,
	// after MirrorWait), before calling them.
	Leads() bool
	// Apply commits req.Command through this peer's Raft.
	Apply(ctx context.Context, req ApplyRequest) (ApplyAnswer, error)
	// Lease renews req.Node's lease and returns once the renewal applied.
	Lease(ctx context.Context, req LeaseRequest) (LeaseAnswer, error)
	// MirrorWait blocks until this peer has applied an index past
	// req.After, req.Wait() has passed or ctx ends (only then an error).
	MirrorWait(ctx context.Context, req MirrorRequest) error
	// Mirror returns the leader's state.
	Mirror(ctx context.Context, req MirrorRequest) (MirrorAnswer, error)
	// Checkpoint takes a checkpoint of a workload this peer holds.
	Checkpoint(ctx context.Context, req CheckpointRequest) (ActionAnswer, error)
	// Restart restarts a workload this peer holds.
	Restart(ctx context.Context, req RestartRequest) (ActionAnswer, error)
	// Migrate moves (or parks) a workload this peer holds.
	Migrate(ctx context.Context, req MigrateRequest) (ActionAnswer, error)
	// Send sends a committed checkpoint from this peer's store to req.To.
	Send(ctx context.Context, req SendRequest) error
	// Results is a workload's results log with its trim point, read
	// linearizably.
	Results(ctx context.Context, req ResultsRequest) (fsm.ResultsLog, error)
}

// ClockHandler is the add-on a Handler implements to let tests step its
// wall clock (the Jepsen clock-jump nemesis).
type ClockHandler interface {
	// Clock sets the test clock's offset to req.Step().
	Clock(ctx context.Context, req ClockRequest) (ClockAnswer, error)
}

// Options are NewHandler's settings; the zero value serves every endpoint
// but clock.
type Options struct {
	// Name is this peer's name: hello answers it, and the refusals of a
	// peer that does not lead name it.
	Name string
	// UnsafeClockControl mounts /v1/internal/clock, if the Handler is a
	// ClockHandler. Tests only.
	UnsafeClockControl bool
}

// NewHandler returns the endpoints over h. Every request must come from a
// verified peer (Caller; the transport says who), and a lease renewal
// only for the caller's own lease: the operator's token opens none of
// them.
func NewHandler(h Handler, opts Options) http.Handler {
	mux := http.NewServeMux()
	lead := leaderCheck(h, opts.Name)
	mux.HandleFunc("POST "+pathApply, endpoint[ApplyRequest, ApplyAnswer]{decode: DecodeApply, lead: lead, call: h.Apply}.serve)
	mux.HandleFunc("POST "+pathLease, endpoint[LeaseRequest, LeaseAnswer]{decode: DecodeLease, lead: lead, call: ownLease(h.Lease)}.serve)
	mux.HandleFunc("POST "+pathMirror, endpoint[MirrorRequest, MirrorAnswer]{
		decode: DecodeMirror, wait: h.MirrorWait, lead: lead, call: h.Mirror, // waits first, as a blocking query
	}.serve)
	mux.HandleFunc("POST "+pathCheckpoint, endpoint[CheckpointRequest, ActionAnswer]{decode: DecodeCheckpoint, call: h.Checkpoint}.serve)
	mux.HandleFunc("POST "+pathRestart, endpoint[RestartRequest, ActionAnswer]{decode: DecodeRestart, call: h.Restart}.serve)
	mux.HandleFunc("POST "+pathMigrate, endpoint[MigrateRequest, ActionAnswer]{decode: DecodeMigrate, call: h.Migrate}.serve)
	mux.HandleFunc("POST "+pathSend, endpoint[SendRequest, noAnswer]{decode: DecodeSend, call: noAnswerOf(h.Send)}.serve)
	mux.HandleFunc("POST "+pathResults, endpoint[ResultsRequest, fsm.ResultsLog]{decode: DecodeResults, lead: lead, call: h.Results}.serve)
	mux.HandleFunc("POST "+pathHello, endpoint[HelloRequest, HelloAnswer]{decode: DecodeHello,
		call: func(context.Context, HelloRequest) (HelloAnswer, error) { return HelloAnswer{Name: opts.Name}, nil }}.serve)
	registerKeyring(mux, h)
	if c, ok := h.(ClockHandler); ok && opts.UnsafeClockControl {
		mux.HandleFunc("POST "+pathClock, endpoint[ClockRequest, ClockAnswer]{decode: DecodeClock, call: c.Clock}.serve)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		api.WriteError(w, fmt.Errorf("%w: no such peer endpoint: %s %s", fsm.ErrNotFound, r.Method, r.URL.Path))
	})
	return requireCaller(mux)
}

// ownLease lets a peer renew only the lease its certificate names.
func ownLease(call func(context.Context, LeaseRequest) (LeaseAnswer, error)) func(context.Context, LeaseRequest) (LeaseAnswer, error) {
	return func(ctx context.Context, req LeaseRequest) (LeaseAnswer, error) {
		if caller, _ := Caller(ctx); caller != req.Node {
			return LeaseAnswer{}, fmt.Errorf("%w: %s may renew only its own lease, not %s's", api.ErrForbidden, caller, req.Node)
		}
		return call(ctx, req)
	}
}

// leaderCheck is the one refusal of a peer that does not lead.
func leaderCheck(h Handler, name string) func() error {
	if name == "" {
		name = "this peer"
	}
	return func() error {
		if !h.Leads() {
			return fmt.Errorf("%w: %s does not lead", api.ErrNoLeader, name)
		}
		return nil
	}
}

// endpoint serves one request type: decode, then wait (mirror), then the
// leader check (leader-only endpoints), then call.
type endpoint[Req, Ans any] struct {
	decode func(io.Reader) (Req, error)
	wait   func(context.Context, Req) error // nil: no wait
	lead   func() error                     // nil: any peer answers
	call   func(context.Context, Req) (Ans, error)
}

func (e endpoint[Req, Ans]) serve(w http.ResponseWriter, r *http.Request) {
	ans, err := e.run(r.Context(), r.Body)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	if _, none := any(ans).(noAnswer); none {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(ans)
}

func (e endpoint[Req, Ans]) run(ctx context.Context, body io.Reader) (Ans, error) {
	var zero Ans
	req, err := e.decode(body)
	if err != nil {
		return zero, err
	}
	if e.wait != nil {
		if err := e.wait(ctx, req); err != nil {
			return zero, err
		}
	}
	if e.lead != nil {
		if err := e.lead(); err != nil {
			return zero, err
		}
	}
	return e.call(ctx, req)
}

// noAnswer is the answer of an endpoint that answers 204 No Content.
type noAnswer struct{}

func noAnswerOf[Req any](f func(context.Context, Req) error) func(context.Context, Req) (noAnswer, error) {
	return func(ctx context.Context, req Req) (noAnswer, error) { return noAnswer{}, f(ctx, req) }
}
