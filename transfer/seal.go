package transfer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// Staging is a checkpoint being written, under root/.staging/. It is used
// by one goroutine at a time.
type Staging struct {
	// Dir is where the checkpointer writes the checkpoint's files. It
	// exists, empty, 0700.
	Dir string

	store    *Store
	workload string
	top      string // the staging directory: holds Dir, then manifest.json
	done     bool   // sealed or aborted
}

// Stage starts a checkpoint of workload: an empty directory to write it
// into. Seal it, or Abort it; Abort after Seal does nothing, so
// `defer st.Abort()` is safe.
func (s *Store) Stage(workload string) (*Staging, error) {
	if _, err := s.workloadDir(workload); err != nil {
		return nil, err
	}
	staging := filepath.Join(s.root, stagingName)
	if err := os.Mkdir(staging, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("stage %s: %w", workload, err)
	}
	top, err := os.MkdirTemp(staging, "stage-")
	if err != nil {
		return nil, fmt.Errorf("stage %s: %w", workload, err)
	}
	st := &Staging{Dir: filepath.Join(top, filesName), store: s, workload: workload, top: top}
	if err := os.Mkdir(st.Dir, 0o700); err != nil {
		os.RemoveAll(top)
		return nil, fmt.Errorf("stage %s: %w", workload, err)
	}
	return st, nil
}

// Abort deletes the staged checkpoint. It does nothing once the staging
// is sealed or aborted.
func (st *Staging) Abort() error {
	if st.done {
		return nil
	}
	st.done = true
	if err := os.RemoveAll(st.top); err != nil {
		return fmt.Errorf("abort staged checkpoint of %s: %w", st.workload, err)
	}
	return nil
}

// Seal turns a staged checkpoint into a sealed one: it builds the manifest
// (info.Workload is the staging's workload if empty, and must be if not),
// makes the files 0600 and directories 0700, fsyncs every file, writes and
// fsyncs manifest.json and every directory (info.Volatile: no fsync at
// all), renames the staging directory
// to root/<workload>/<seq> (ErrExists if that is taken; the staging then
// stays, to Abort or to Seal with another seq) and fsyncs its parent. Then it prunes the
// workload to the store's keep, never the checkpoint just sealed; if only
// that fails, Seal returns the sealed checkpoint and the error together.
//
// Pruning counts sealed checkpoints, not committed ones: a caller whose
// newest checkpoints may be aborted should open the store with a larger
// keep and Prune after each commit.
func (s *Store) Seal(st *Staging, info Info) (*Checkpoint, error) {
	if st == nil || st.store != s || st.done {
		return nil, errors.New("seal: staging is not open in this store")
	}
	if info.Workload == "" {
		info.Workload = st.workload
	}
	name := fmt.Sprintf("%s#%d", info.Workload, info.Seq)
	if info.Workload != st.workload {
		return nil, fmt.Errorf("seal %s: staged for workload %s", name, st.workload)
	}
	m, err := buildManifest(st.Dir, info, DefaultChunkSize, true)
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", name, err)
	}
	enc, err := m.Encode()
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", name, err)
	}
	if err := writeManifest(st.top, enc, !m.Volatile); err != nil {
		return nil, fmt.Errorf("seal %s: %w", name, err)
	}
	c := &Checkpoint{Manifest: m, Digest: digestOf(enc)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.Dir, err = s.renameInLocked(st, info.Seq, !m.Volatile); err != nil {
		return nil, fmt.Errorf("seal %s: %w", name, err)
	}
	if err := s.pruneLocked(info.Workload, s.keep, &info.Seq); err != nil {
		return c, fmt.Errorf("sealed %s, then: %w", name, err)
	}
	return c, nil
}

// writeManifest writes manifest.json (enc) into the checkpoint directory
// top and, when durable, fsyncs it and top.
func writeManifest(top string, enc []byte, durable bool) error {
	p := filepath.Join(top, manifestName)
	if !durable {
		return os.WriteFile(p, enc, 0o600)
	}
	if err := writeFileSync(p, enc); err != nil {
		return err
	}
	return syncPath(top)
}

// renameInLocked moves the sealed staging directory to its place and
// returns that place; durable fsyncs the directories the rename changed.
func (s *Store) renameInLocked(st *Staging, seq uint64, durable bool) (string, error) {
	wdir := filepath.Join(s.root, st.workload)
	switch err := os.Mkdir(wdir, 0o700); {
	case err == nil && durable:
		if err := syncPath(s.root); err != nil {
			return "", err
		}
	case err != nil && !errors.Is(err, fs.ErrExist):
		return "", err
	}
	dst := filepath.Join(wdir, strconv.FormatUint(seq, 10))
	if _, err := os.Lstat(dst); err == nil {
		return "", fmt.Errorf("%w: %s", ErrExists, dst)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := os.Rename(st.top, dst); err != nil {
		return "", err
	}
	st.done = true
	if !durable {
		return dst, nil
	}
	return dst, syncPath(wdir)
}

// writeFileSync writes b to the file p (0600), replacing what was there,
// and fsyncs it.
func writeFileSync(p string, b []byte) error {
	return writeSynced(p, b, os.O_TRUNC, 0o600)
}

// writeSynced creates or opens p with the extra flag (O_EXCL or O_TRUNC),
// writes b and fsyncs it.
func writeSynced(p string, b []byte, flag int, mode os.FileMode) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|flag, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
