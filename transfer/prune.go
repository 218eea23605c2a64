package transfer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// Remove deletes the sealed checkpoint seq of workload, or returns
// ErrNotFound. The directory is first renamed into root/.staging/, so a
// crash mid-way never leaves a half-deleted checkpoint in place.
func (s *Store) Remove(workload string, seq uint64) error {
	wdir, err := s.workloadDir(workload)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.removeLocked(wdir, seq)
}

// Prune deletes every checkpoint directory of workload, whether it loads or
// not, older than the keep newest that load. keep must be at least 1 (use
// Remove to delete the rest).
func (s *Store) Prune(workload string, keep int) error {
	if keep < 1 {
		return fmt.Errorf("prune %s: keep %d is less than 1", workload, keep)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pruneLocked(workload, keep, nil)
}

// pruneLocked is Prune; it never removes seq *spare (if spare is not nil).
func (s *Store) pruneLocked(workload string, keep int, spare *uint64) error {
	good, bad, err := s.scan(workload)
	if err != nil {
		return fmt.Errorf("prune %s: %w", workload, err)
	}
	if len(good) <= keep {
		keep = len(good)
	}
	if keep == 0 {
		return nil
	}
	cutoff := good[len(good)-keep].Manifest.Seq
	var old []uint64
	for _, c := range good[:len(good)-keep] {
		old = append(old, c.Manifest.Seq)
	}
	for _, seq := range bad {
		if seq < cutoff {
			old = append(old, seq)
		}
	}
	wdir := filepath.Join(s.root, workload)
	for _, seq := range old {
		if spare != nil && seq == *spare {
			continue
		}
		if err := s.removeLocked(wdir, seq); err != nil {
			return fmt.Errorf("prune %s: %w", workload, err)
		}
	}
	return nil
}

// removeLocked moves wdir/<seq> into the staging area and deletes it
// there.
func (s *Store) removeLocked(wdir string, seq uint64) error {
	dir := filepath.Join(wdir, strconv.FormatUint(seq, 10))
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s#%d", ErrNotFound, filepath.Base(wdir), seq)
	}
	staging := filepath.Join(s.root, stagingName)
	if err := os.Mkdir(staging, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	tmp, err := os.MkdirTemp(staging, "remove-")
	if err != nil {
		return err
	}
	if err := os.Rename(dir, filepath.Join(tmp, "c")); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := syncPath(wdir); err != nil {
		return err
	}
	return os.RemoveAll(tmp)
}
