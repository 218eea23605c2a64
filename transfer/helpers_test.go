package transfer

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// at is the fixed creation time of test checkpoints.
var at = time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC)

// tree describes files to write: a key ending in "/" is a directory,
// any other key a file with that content.
type tree map[string]string

// writeTree writes t under dir.
func writeTree(t testing.TB, dir string, files tree) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(strings.TrimSuffix(p, "/")))
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// info returns the Info of test checkpoint seq of workload.
func info(workload string, seq uint64) Info {
	return Info{Workload: workload, Epoch: 7, Seq: seq, Mode: ModeCRIU, CreatedAt: at,
		Meta: map[string]string{"criu.log_size": "1234"}}
}

// openStore opens a store in a fresh temporary directory.
func openStore(t testing.TB, keep int) *Store {
	t.Helper()
	s, err := OpenStore(filepath.Join(t.TempDir(), "checkpoints"), keep)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// seal stages files for workload and seals them as seq.
func seal(t testing.TB, s *Store, workload string, seq uint64, files tree) *Checkpoint {
	t.Helper()
	st, err := s.Stage(workload)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Abort()
	writeTree(t, st.Dir, files)
	c, err := s.Seal(st, info(workload, seq))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// seqs returns the seqs of list.
func seqs(list []*Checkpoint) []uint64 {
	var out []uint64
	for _, c := range list {
		out = append(out, c.Manifest.Seq)
	}
	return out
}

// hashOf is the hex SHA-256 of s.
func hashOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// corruptAt asserts that err is a *CorruptError about path (and chunk, if
// chunk is not -2) whose problem contains problem.
func corruptAt(t *testing.T, err error, path string, chunk int, problem string) {
	t.Helper()
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %T %v, want *CorruptError", err, err)
	}
	if ce.Path != path || (chunk != -2 && ce.Chunk != chunk) || !strings.Contains(ce.Problem, problem) {
		t.Fatalf("err = %v (path %q chunk %d), want path %q chunk %d problem %q", err, ce.Path, ce.Chunk, path, chunk, problem)
	}
	if !strings.Contains(err.Error(), path) {
		t.Fatalf("message %q does not name %s", err, path)
	}
}
