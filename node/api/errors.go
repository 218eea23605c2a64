package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/lifeboat/lifeboat/fsm"
)

// Errors of the API layer itself.
var (
	// ErrNoLeader means the cluster has no leader to take a write now.
	ErrNoLeader = errors.New("no leader")
	// ErrBadRequest means the request itself is malformed.
	ErrBadRequest = errors.New("bad request")
	// ErrUnauthorized means a missing or unknown bearer token.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden means a read-only token was used for a write.
	ErrForbidden = errors.New("forbidden")
	// ErrUnavailable means this peer cannot answer now (not ready).
	ErrUnavailable = errors.New("unavailable")
	// ErrConflict means the request does not fit the workload's state
	// (not running here, a mode without checkpoints).
	ErrConflict = errors.New("conflict")
	// ErrCheckpointFailed means a checkpoint was attempted and failed.
	ErrCheckpointFailed = errors.New("checkpoint failed")
	// ErrRestoreFailed means a restore was attempted and refused or failed.
	ErrRestoreFailed = errors.New("restore failed")
	// ErrTooLarge means a body is over the endpoint's bound.
	ErrTooLarge = errors.New("too large")
)

// errorCodes maps sentinels to wire codes and HTTP statuses, most specific
// first. The same table turns a forwarded answer back into a sentinel.
var errorCodes = []struct {
	err    error
	code   string
	status int
}{
	{fsm.ErrStaleEpoch, "stale_epoch", http.StatusConflict},
	{fsm.ErrExists, "exists", http.StatusConflict},
	{fsm.ErrNotFound, "not_found", http.StatusNotFound},
	{fsm.ErrInvalid, "invalid", http.StatusBadRequest},
	{fsm.ErrLeaseValid, "lease_valid", http.StatusConflict},
	{fsm.ErrNoPending, "no_pending", http.StatusConflict},
	{fsm.ErrMalformed, "malformed", http.StatusBadRequest},
	{fsm.ErrUnknownCommand, "unknown_command", http.StatusBadRequest},
	{ErrTooLarge, "too_large", http.StatusRequestEntityTooLarge},
	{ErrBodyTimeout, "body_timeout", http.StatusRequestTimeout},
	{ErrBadRequest, "bad_request", http.StatusBadRequest},
	{ErrConflict, "conflict", http.StatusConflict},
	{ErrCheckpointFailed, "checkpoint_failed", http.StatusInternalServerError},
	{ErrRestoreFailed, "restore_failed", http.StatusInternalServerError},
	{ErrUnauthorized, "unauthorized", http.StatusUnauthorized},
	{ErrForbidden, "forbidden", http.StatusForbidden},
	{ErrNoLeader, "no_leader", http.StatusServiceUnavailable},
	{ErrUnavailable, "unavailable", http.StatusServiceUnavailable},
}

// Classify returns the wire code and HTTP status of err.
func Classify(err error) (code string, status int) {
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			return e.code, e.status
		}
	}
	return "internal", http.StatusInternalServerError
}

// FromCode rebuilds an error from a wire code and message so that callers
// across a forward can still test it with errors.Is.
func FromCode(code, message string) error {
	for _, e := range errorCodes {
		if e.code == code {
			return &RemoteError{Code: code, Message: message, sentinel: e.err}
		}
	}
	return &RemoteError{Code: code, Message: message}
}

// RemoteError is an error answered by another peer.
type RemoteError struct {
	Code     string
	Message  string
	Status   int
	sentinel error
}

func (e *RemoteError) Error() string { return e.Message }

// Unwrap lets errors.Is find the sentinel behind the code.
func (e *RemoteError) Unwrap() error { return e.sentinel }

// WriteError answers err as JSON with its code and status.
func WriteError(w http.ResponseWriter, err error) {
	code, status := Classify(err)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, ErrorBody{Error: ErrorDetail{Code: code, Message: err.Error()}})
}

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
}
