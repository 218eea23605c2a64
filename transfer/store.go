package transfer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Names inside the store's root.
const (
	stagingName  = ".staging"      // root/.staging/: checkpoints being written
	manifestName = "manifest.json" // root/<workload>/<seq>/manifest.json
	filesName    = "files"         // root/<workload>/<seq>/files/
	defaultKeep  = 2
)

// Store keeps sealed checkpoints on local disk, one directory each:
// root/<workload>/<seq>/{manifest.json, files/...}. Checkpoints are
// written under root/.staging/ and renamed into place when sealed, so a
// directory in its place is always complete. Files at rest are 0600,
// directories 0700.
//
// A Store is safe for concurrent use; one process uses a root at a time.
// Reads (List, Get, Verify, Chunks) take no lock, so removing or pruning a
// checkpoint while it is read makes the read fail: callers coordinate per
// workload.
type Store struct {
	root string
	keep int
	mu   sync.Mutex // guards the sealed directories: Seal's rename, Remove, Prune
}

// Checkpoint is a sealed checkpoint in the store.
type Checkpoint struct {
	// Dir is the checkpoint's directory, root/<workload>/<seq>.
	Dir      string
	Manifest *Manifest
	// Digest is the manifest's digest, what Raft commits.
	Digest string
}

// FilesDir is the directory holding the checkpoint's files, what a
// checkpointer restores from.
func (c *Checkpoint) FilesDir() string { return filepath.Join(c.Dir, filesName) }

// name is "workload#seq", how errors name a checkpoint.
func (c *Checkpoint) name() string {
	if c.Manifest == nil {
		return c.Dir
	}
	return fmt.Sprintf("%s#%d", c.Manifest.Workload, c.Manifest.Seq)
}

// OpenStore opens (creating it 0700 if needed) the store at root, keeping
// keep sealed checkpoints per workload (2 if keep is 0). It deletes what a
// crash left under root/.staging/: half-written or half-removed
// checkpoints, but not what interrupted transfers received (recv-*), which
// a retry resumes from after a restart too (it re-hashes every byte; the
// server drops them after its ResumeTTL).
func OpenStore(root string, keep int) (*Store, error) {
	if keep < 0 {
		return nil, fmt.Errorf("open checkpoint store: keep %d is negative", keep)
	}
	if keep == 0 {
		keep = defaultKeep
	}
	if root == "" {
		return nil, errors.New("open checkpoint store: root is empty")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open checkpoint store: %w", err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("open checkpoint store: %w", err)
	}
	if err := clearStaging(filepath.Join(abs, stagingName)); err != nil {
		return nil, fmt.Errorf("open checkpoint store: remove leftover staging: %w", err)
	}
	return &Store{root: abs, keep: keep}, nil
}

// clearStaging removes everything under dir but the receive stagings.
func clearStaging(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), recvPrefix) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// Root returns the store's root directory (absolute).
func (s *Store) Root() string { return s.root }

// workloadDir returns root/<workload>, or an error if workload is no
// valid id.
func (s *Store) workloadDir(workload string) (string, error) {
	if err := ValidateWorkload(workload); err != nil {
		return "", fmt.Errorf("checkpoint store: %w", err)
	}
	return filepath.Join(s.root, workload), nil
}

// List returns the sealed checkpoints of workload, oldest first by seq. A
// directory whose manifest is missing, does not parse, or names another
// workload or seq is skipped (Get reports why; Prune removes it once it
// is older than what is kept). Checkpoints are listed, not verified.
func (s *Store) List(workload string) ([]*Checkpoint, error) {
	good, _, err := s.scan(workload)
	return good, err
}

// Get returns the sealed checkpoint seq of workload: ErrNotFound if there
// is none, a *CorruptError if its manifest cannot be read.
func (s *Store) Get(workload string, seq uint64) (*Checkpoint, error) {
	wdir, err := s.workloadDir(workload)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(wdir, strconv.FormatUint(seq, 10))
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s#%d", ErrNotFound, workload, seq)
	}
	return loadCheckpoint(dir, workload, seq)
}

// Latest returns the newest sealed checkpoint of workload that List shows,
// or ErrNotFound.
func (s *Store) Latest(workload string) (*Checkpoint, error) {
	list, err := s.List(workload)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("%w: no checkpoint of %s", ErrNotFound, workload)
	}
	return list[len(list)-1], nil
}

// scan returns the loadable checkpoints of workload and the seqs of the
// directories that do not load, both in seq order. Entries whose name is
// not a canonical decimal seq are not the store's and are ignored.
func (s *Store) scan(workload string) (good []*Checkpoint, bad []uint64, err error) {
	wdir, err := s.workloadDir(workload)
	if err != nil {
		return nil, nil, err
	}
	des, err := os.ReadDir(wdir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoint store: %w", err)
	}
	var seqs []uint64
	for _, de := range des {
		if seq, err := strconv.ParseUint(de.Name(), 10, 64); err == nil && strconv.FormatUint(seq, 10) == de.Name() {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	for _, seq := range seqs {
		c, err := loadCheckpoint(filepath.Join(wdir, strconv.FormatUint(seq, 10)), workload, seq)
		if err != nil {
			bad = append(bad, seq)
			continue
		}
		good = append(good, c)
	}
	return good, bad, nil
}

// loadCheckpoint reads and checks the manifest of the checkpoint directory
// dir, which should be seq of workload.
func loadCheckpoint(dir, workload string, seq uint64) (*Checkpoint, error) {
	name := fmt.Sprintf("%s#%d", workload, seq)
	m, digest, err := readManifest(dir)
	if err != nil {
		return nil, &CorruptError{Checkpoint: name, Path: manifestName, Chunk: -1, Problem: err.Error(), Err: err}
	}
	if m.Workload != workload || m.Seq != seq {
		return nil, &CorruptError{Checkpoint: name, Path: manifestName, Chunk: -1,
			Problem: fmt.Sprintf("names %s#%d", m.Workload, m.Seq)}
	}
	return &Checkpoint{Dir: dir, Manifest: m, Digest: digest}, nil
}

// readManifest reads and parses dir/manifest.json and returns it with its
// digest.
func readManifest(dir string) (*Manifest, string, error) {
	f, err := os.Open(filepath.Join(dir, manifestName))
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(f, MaxManifestSize+1)); err != nil {
		return nil, "", err
	}
	m, err := ParseManifest(buf.Bytes())
	if err != nil {
		return nil, "", err
	}
	return m, m.Digest(), nil
}
