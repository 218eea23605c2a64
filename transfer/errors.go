package transfer

import (
	"errors"
	"fmt"
)

// Sentinel errors. Failures wrap one of them with %w and say what was
// wrong; callers branch with errors.Is.
var (
	// ErrBadManifest means a manifest is malformed or breaks a rule of the
	// format; the wrapping error says which.
	ErrBadManifest = errors.New("transfer: bad manifest")
	// ErrCorrupt means a checkpoint on disk does not match its manifest (or
	// its manifest cannot be read). Verify returns it as a *CorruptError.
	ErrCorrupt = errors.New("transfer: corrupt checkpoint")
	// ErrNotFound means the store holds no such checkpoint.
	ErrNotFound = errors.New("transfer: checkpoint not found")
	// ErrExists means a checkpoint with that workload and seq is sealed
	// already.
	ErrExists = errors.New("transfer: checkpoint exists")
)

// CorruptError says where a checkpoint departs from its manifest. It
// matches ErrCorrupt with errors.Is, and whatever Err is as well.
type CorruptError struct {
	// Checkpoint names the checkpoint as "workload#seq".
	Checkpoint string
	// Path is relative to the checkpoint's directory ("manifest.json",
	// "files/pages-1.img"), or "" when the problem is the whole checkpoint.
	Path string
	// Chunk is the index of the bad chunk in its file, or -1.
	Chunk int
	// Problem says what is wrong, for people.
	Problem string
	// Err is the underlying error, if any (an I/O error, ErrBadManifest).
	Err error
}

// Error reads like "checkpoint counter#3: files/pages-1.img chunk 17:
// sha256 mismatch".
func (e *CorruptError) Error() string {
	s := "checkpoint " + e.Checkpoint
	if e.Path != "" {
		s += ": " + e.Path
	}
	if e.Chunk >= 0 {
		s += fmt.Sprintf(" chunk %d", e.Chunk)
	}
	return s + ": " + e.Problem
}

// Unwrap returns ErrCorrupt and Err, so errors.Is finds both.
func (e *CorruptError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrCorrupt}
	}
	return []error{ErrCorrupt, e.Err}
}

// fileError is a problem with one entry of a checkpoint tree. Verify turns
// it into a CorruptError; BuildManifest returns it as it is.
type fileError struct {
	path    string // slash-separated, relative to the tree's root; "" for the root
	chunk   int    // chunk index, or -1
	problem string
	err     error // underlying error, or nil
}

func (e *fileError) Error() string {
	s := e.path
	if s == "" {
		s = "."
	}
	if e.chunk >= 0 {
		s += fmt.Sprintf(" chunk %d", e.chunk)
	}
	return s + ": " + e.problem
}

func (e *fileError) Unwrap() error { return e.err }

// errorf builds a fileError about one entry (chunk -1) from a format.
func errorf(path string, err error, format string, args ...any) *fileError {
	return &fileError{path: path, chunk: -1, problem: fmt.Sprintf(format, args...), err: err}
}
