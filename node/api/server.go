package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/lifeboat/lifeboat/fsm"
)

// Backend is what the handlers need from the node. The HTTP server calls
// it from its request goroutines, concurrently; every method may block on
// Raft or on a forward to the leader and must honour ctx. Returned values
// belong to the caller.
type Backend interface {
	Status(ctx context.Context) (Status, error)
	Workloads(ctx context.Context) ([]Workload, error)
	Workload(ctx context.Context, id string) (Workload, error)
	Submit(ctx context.Context, spec fsm.WorkloadSpec) (Workload, error)
	Remove(ctx context.Context, id string) error
	AppendResult(ctx context.Context, id string, epoch uint64, value string) (fsm.Result, error)
	// Results is the workload's fenced results log with its trim point,
	// read linearizably (on the leader, after a barrier).
	Results(ctx context.Context, id string) (fsm.ResultsLog, error)
	Migrations(ctx context.Context) ([]fsm.Migration, error)
	// Checkpoint takes a checkpoint of a workload now, on its holder.
	Checkpoint(ctx context.Context, id string) (ActionResult, error)
	// Restart restarts a workload on its holder, from its latest committed
	// checkpoint when fromCheckpoint.
	Restart(ctx context.Context, id string, fromCheckpoint bool) (ActionResult, error)
	// Migrate moves a workload to node to: final checkpoint, transfer,
	// commit, grant of the next epoch, restore.
	Migrate(ctx context.Context, id, to string) (ActionResult, error)
	// Drain marks a node draining: no new work, its workloads move away.
	Drain(ctx context.Context, node string) (DrainResult, error)
	// Undrain returns a draining node to service.
	Undrain(ctx context.Context, node string) (DrainResult, error)
	// Ready returns nil when this peer should receive traffic.
	Ready() error
}

// The headers of a results read (GET /v1/workloads/{id}/results), whose
// body is the JSON array of the entries kept: its trim point. Trimmed is
// how many entries were ever trimmed from the front of the log (the
// oldest go first, beyond fsm.MaxResults or fsm.MaxResultBytes);
// TrimmedThrough is the Raft index of the newest of them, 0 when none:
// every entry at or below it is gone, every entry above it is in the body.
const (
	HeaderResultsTrimmed        = "X-Lifeboat-Results-Trimmed"
	HeaderResultsTrimmedThrough = "X-Lifeboat-Results-Trimmed-Through"
)

// Server serves the admin API.
type Server struct {
	backend Backend
	auth    Auth
	mux     *http.ServeMux
	metrics http.Handler
}

// NewServer builds the API over b. metrics serves /metrics (nil: 404).
func NewServer(b Backend, auth Auth, metrics http.Handler) *Server {
	s := &Server{backend: b, auth: auth, mux: http.NewServeMux(), metrics: metrics}
	s.routes()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.HandleFunc("GET /metrics", s.guard(false, s.serveMetrics))
	s.mux.HandleFunc("GET /v1/status", s.guard(false, s.status))
	s.mux.HandleFunc("GET /v1/members", s.guard(false, s.members))
	s.mux.HandleFunc("GET /v1/workloads", s.guard(false, s.workloads))
	s.mux.HandleFunc("POST /v1/workloads", s.guard(true, s.submit))
	s.mux.HandleFunc("GET /v1/workloads/{id}", s.guard(false, s.workload))
	s.mux.HandleFunc("DELETE /v1/workloads/{id}", s.guard(true, s.remove))
	s.mux.HandleFunc("POST /v1/workloads/{id}/results", s.guardResults(true, s.appendResult))
	s.mux.HandleFunc("GET /v1/workloads/{id}/results", s.guardResults(false, s.results))
	s.mux.HandleFunc("POST /v1/workloads/{id}/checkpoint", s.guard(true, s.checkpoint))
	s.mux.HandleFunc("POST /v1/workloads/{id}/restart", s.guard(true, s.restart))
	s.mux.HandleFunc("POST /v1/workloads/{id}/migrate", s.guard(true, s.migrate))
	s.mux.HandleFunc("POST /v1/nodes/{name}/drain", s.guard(true, func(w http.ResponseWriter, r *http.Request) {
		res, err := s.backend.Drain(r.Context(), r.PathValue("name"))
		respond(w, http.StatusOK, res, err)
	}))
	s.mux.HandleFunc("POST /v1/nodes/{name}/undrain", s.guard(true, func(w http.ResponseWriter, r *http.Request) {
		res, err := s.backend.Undrain(r.Context(), r.PathValue("name"))
		respond(w, http.StatusOK, res, err)
	}))
	s.mux.HandleFunc("GET /v1/migrations", s.guard(false, s.migrations))
	s.keyRoutes()
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, fmt.Errorf("%w: no such endpoint: %s %s", fsm.ErrNotFound, r.Method, r.URL.Path))
	})
}

func (s *Server) guard(write bool, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.auth.check(r, write); err != nil {
			WriteError(w, err)
			return
		}
		h(w, r)
	}
}

// guardResults also lets a workload in with its own token
// (Auth.WorkloadToken) for its own results log.
func (s *Server) guardResults(write bool, h http.HandlerFunc) http.HandlerFunc {
	guarded := s.guard(write, h)
	return func(w http.ResponseWriter, r *http.Request) {
		if s.auth.workloadResults(r, r.PathValue("id")) {
			h(w, r)
			return
		}
		guarded(w, r)
	}
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if err := s.backend.Ready(); err != nil {
		WriteError(w, fmt.Errorf("%w: %v", ErrUnavailable, err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if s.metrics == nil {
		WriteError(w, fmt.Errorf("%w: metrics are not enabled", fsm.ErrNotFound))
		return
	}
	s.metrics.ServeHTTP(w, r)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.backend.Status(r.Context())
	respond(w, http.StatusOK, st, err)
}

func (s *Server) members(w http.ResponseWriter, r *http.Request) {
	st, err := s.backend.Status(r.Context())
	respond(w, http.StatusOK, st.Members, err)
}

func (s *Server) workloads(w http.ResponseWriter, r *http.Request) {
	ws, err := s.backend.Workloads(r.Context())
	if !s.auth.writer(r) {
		for i := range ws {
			ws[i] = redact(ws[i])
		}
	}
	respond(w, http.StatusOK, ws, err)
}

func (s *Server) workload(w http.ResponseWriter, r *http.Request) {
	wl, err := s.backend.Workload(r.Context(), r.PathValue("id"))
	if !s.auth.writer(r) {
		wl = redact(wl)
	}
	respond(w, http.StatusOK, wl, err)
}

func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	raw, err := readBody(r, MaxBody, "a workload spec")
	if err != nil {
		WriteError(w, err)
		return
	}
	spec, err := DecodeSpec(bytes.NewReader(raw), r.Header.Get("Content-Type"))
	if err != nil {
		WriteError(w, err)
		return
	}
	wl, err := s.backend.Submit(r.Context(), spec)
	respond(w, http.StatusCreated, wl, err)
}

func (s *Server) remove(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := s.backend.Remove(r.Context(), id)
	respond(w, http.StatusOK, map[string]string{"removed": id}, err)
}

func (s *Server) appendResult(w http.ResponseWriter, r *http.Request) {
	epoch, err := strconv.ParseUint(r.Header.Get("X-Lifeboat-Epoch"), 10, 64)
	if err != nil || epoch == 0 {
		WriteError(w, badRequest("header X-Lifeboat-Epoch must carry the holder's epoch (a positive integer)"))
		return
	}
	body, err := readBody(r, MaxResult, "a result")
	if err != nil {
		WriteError(w, err)
		return
	}
	res, err := s.backend.AppendResult(r.Context(), r.PathValue("id"), epoch, string(body))
	respond(w, http.StatusCreated, res, err)
}

// results answers the entries kept, as a JSON array (as it always has),
// and the trim point in headers, so that readers of the array alone are
// unaffected.
func (s *Server) results(w http.ResponseWriter, r *http.Request) {
	l, err := s.backend.Results(r.Context(), r.PathValue("id"))
	if err == nil {
		w.Header().Set(HeaderResultsTrimmed, strconv.FormatUint(l.Trimmed, 10))
		w.Header().Set(HeaderResultsTrimmedThrough, strconv.FormatUint(l.TrimmedThrough, 10))
	}
	if l.Results == nil {
		l.Results = []fsm.Result{}
	}
	respond(w, http.StatusOK, l.Results, err)
}

func (s *Server) checkpoint(w http.ResponseWriter, r *http.Request) {
	res, err := s.backend.Checkpoint(r.Context(), r.PathValue("id"))
	respond(w, http.StatusOK, res, err)
}

func (s *Server) restart(w http.ResponseWriter, r *http.Request) {
	var req RestartRequest
	body, err := readBody(r, MaxSmallBody, "a restart request")
	if err != nil {
		WriteError(w, err)
		return
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := decodeStrict(body, &req); err != nil {
			WriteError(w, badRequest("restart request: %v (want {\"from_checkpoint\": true|false})", err))
			return
		}
	}
	res, err := s.backend.Restart(r.Context(), r.PathValue("id"), req.FromCheckpoint)
	respond(w, http.StatusOK, res, err)
}

func (s *Server) migrate(w http.ResponseWriter, r *http.Request) {
	var req MigrateRequest
	body, err := readBody(r, MaxSmallBody, "a migrate request")
	if err != nil {
		WriteError(w, err)
		return
	}
	if err := decodeStrict(body, &req); err != nil || req.To == "" {
		if err == nil {
			err = errors.New("\"to\" is empty")
		}
		WriteError(w, badRequest("migrate request: %v (want {\"to\": \"NODE\"})", err))
		return
	}
	res, err := s.backend.Migrate(r.Context(), r.PathValue("id"), req.To)
	respond(w, http.StatusOK, res, err)
}

func (s *Server) migrations(w http.ResponseWriter, r *http.Request) {
	ms, err := s.backend.Migrations(r.Context())
	respond(w, http.StatusOK, ms, err)
}

// DecodeSpec reads a workload spec of at most MaxBody bytes as JSON or
// YAML, strictly: unknown fields are an error that names them, as is
// anything after the spec. The defaults are applied and the result
// validated and checked against the admission bounds (fsm.WorkloadSpec.Admit).
func DecodeSpec(r io.Reader, contentType string) (fsm.WorkloadSpec, error) {
	var spec fsm.WorkloadSpec
	raw, err := io.ReadAll(io.LimitReader(r, MaxBody+1))
	if err != nil {
		return spec, badRequest("reading the spec: %v", err)
	}
	if len(raw) > MaxBody {
		return spec, tooLarge("a workload spec", MaxBody)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return spec, badRequest("the workload spec is empty")
	}
	if looksJSON(raw, contentType) {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err = dec.Decode(&spec); err == nil && dec.Decode(&json.RawMessage{}) != io.EOF {
			return spec, badRequest("the workload spec is followed by more data: send one JSON object")
		}
	} else {
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		var extra yaml.Node
		if err = dec.Decode(&spec); err == nil && dec.Decode(&extra) != io.EOF {
			return spec, badRequest("the workload spec is followed by another YAML document: send one")
		}
	}
	if err != nil {
		return spec, badRequest("the workload spec does not parse: %v", err)
	}
	spec = spec.WithDefaults()
	if err := errors.Join(spec.Validate(), spec.Admit()); err != nil {
		return spec, err
	}
	return spec, nil
}

// decodeStrict decodes one JSON object from body into v: no unknown
// fields, nothing after it.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.Decode(&json.RawMessage{}) != io.EOF {
		return errors.New("more data after the JSON object")
	}
	return nil
}

func looksJSON(raw []byte, contentType string) bool {
	if strings.Contains(contentType, "json") {
		return true
	}
	if strings.Contains(contentType, "yaml") {
		return false
	}
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && t[0] == '{'
}

func respond(w http.ResponseWriter, status int, v any, err error) {
	if err != nil {
		WriteError(w, err)
		return
	}
	writeJSON(w, status, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// DefaultTimeout bounds one CLI call.
const DefaultTimeout = 10 * time.Second
