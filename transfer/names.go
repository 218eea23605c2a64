package transfer

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"unicode/utf8"
)

// Limits on the names a manifest or the store accepts.
const (
	// MaxPathLen bounds a file's path in a manifest, in bytes.
	MaxPathLen = 4096
	// maxNameLen bounds one path component and a workload id, in bytes:
	// both become file names.
	maxNameLen = 255
)

// ValidateWorkload reports why id cannot name a workload in the store, or
// nil. A workload id becomes a directory name, so it must be non-empty, at
// most 255 bytes of UTF-8, and free of "/", "\\" and NUL; it may not start
// with "." (which rules out ".", ".." and the store's own ".staging").
func ValidateWorkload(id string) error {
	switch {
	case id == "":
		return errors.New("workload id is empty")
	case len(id) > maxNameLen:
		return fmt.Errorf("workload id is %d bytes, more than %d", len(id), maxNameLen)
	case !utf8.ValidString(id):
		return fmt.Errorf("workload id %q is not UTF-8", id)
	case strings.ContainsAny(id, "/\\\x00"):
		return fmt.Errorf("workload id %q holds a '/', '\\' or NUL", id)
	case id[0] == '.':
		return fmt.Errorf("workload id %q starts with '.'", id)
	}
	return nil
}

// validatePath reports why p cannot be a file's path in a manifest: it
// must be relative, slash-separated, clean, free of "..", NUL and invalid
// UTF-8, with components of at most 255 bytes.
func validatePath(p string) error {
	switch {
	case p == "" || p == ".":
		return errors.New("empty path")
	case len(p) > MaxPathLen:
		return fmt.Errorf("path is %d bytes, more than %d", len(p), MaxPathLen)
	case !utf8.ValidString(p):
		return fmt.Errorf("path %q is not UTF-8", p)
	case strings.IndexByte(p, 0) >= 0:
		return fmt.Errorf("path %q holds a NUL", p)
	case p[0] == '/':
		return fmt.Errorf("path %q is absolute", p)
	case path.Clean(p) != p:
		return fmt.Errorf("path %q is not clean", p)
	case p == ".." || strings.HasPrefix(p, "../"):
		return fmt.Errorf("path %q leaves the checkpoint", p)
	}
	for c := range strings.SplitSeq(p, "/") {
		if len(c) > maxNameLen {
			return fmt.Errorf("path %q has a component of %d bytes, more than %d", p, len(c), maxNameLen)
		}
	}
	return nil
}

// validateHash reports why h is not a lowercase hex SHA-256.
func validateHash(h string) error {
	if len(h) != 64 {
		return fmt.Errorf("sha256 %q is %d characters, want 64", h, len(h))
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("sha256 %q is not lowercase hex", h)
		}
	}
	return nil
}
