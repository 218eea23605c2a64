package fsm

import "errors"

// Sentinel errors. Apply refusals and decoding failures wrap one of them
// with %w and add what was wrong; callers branch with errors.Is.
var (
	// ErrExists means the id or name is already taken.
	ErrExists = errors.New("fsm: already exists")
	// ErrNotFound means the named node, workload or migration is unknown.
	ErrNotFound = errors.New("fsm: not found")
	// ErrStaleEpoch means the command carries an epoch that is not the
	// workload's current one: its holder has been fenced off.
	ErrStaleEpoch = errors.New("fsm: stale epoch")
	// ErrLeaseValid means a lease expiry was refused because the lease was
	// renewed after the expiry was proposed (or the node has left).
	ErrLeaseValid = errors.New("fsm: lease still valid")
	// ErrNoPending means there is no pending checkpoint with that seq and
	// digest.
	ErrNoPending = errors.New("fsm: no pending checkpoint")
	// ErrInvalid means a field of the command or spec is invalid; the
	// wrapping error names the field.
	ErrInvalid = errors.New("fsm: invalid")
	// ErrUnknownCommand means the command type byte is not known to this
	// version.
	ErrUnknownCommand = errors.New("fsm: unknown command")
	// ErrMalformed means an encoded command or snapshot cannot be decoded.
	ErrMalformed = errors.New("fsm: malformed")
)
