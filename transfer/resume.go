package transfer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// DropStaging ends every transfer of workload in progress (their clients
// get ErrRefused) and deletes what interrupted transfers of it left for
// a resume. The node calls it when it no longer wants the workload's
// pending checkpoint.
func (s *Server) DropStaging(workload string) error {
	if err := ValidateWorkload(workload); err != nil {
		return fmt.Errorf("drop staging: %w", err)
	}
	var live []*recvSession
	s.mu.Lock()
	for _, rs := range s.byKey {
		if rs.st.m.Workload == workload {
			live = append(live, rs)
		}
	}
	s.mu.Unlock()
	for _, rs := range live {
		rs.fail(fmt.Errorf("%w: the receiver dropped the transfers of %s", ErrRefused, workload))
		<-rs.done
	}
	_, err := s.removeStagings(workload, func(os.FileInfo) bool { return true })
	return err
}

// gcLoop removes stale resumable stagings every ResumeTTL/4 (at most a
// minute) until Close.
func (s *Server) gcLoop() {
	t := time.NewTicker(min(s.cfg.ResumeTTL/4, time.Minute))
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			if removed, err := s.gcStaging(now); err != nil {
				s.log.Warn("staging cleanup", "err", err)
			} else if len(removed) > 0 {
				s.log.Info("removed stale resumable transfers", "dirs", removed)
			}
		}
	}
}

// gcStaging removes the resumable stagings no session uses that were
// last used ResumeTTL or longer before now, and returns their names.
func (s *Server) gcStaging(now time.Time) ([]string, error) {
	return s.removeStagings("", func(fi os.FileInfo) bool { return now.Sub(fi.ModTime()) >= s.cfg.ResumeTTL })
}

// removeStagings removes the received-checkpoint stagings (of workload,
// or all if it is empty) that no live session uses and stale accepts.
// Each is first renamed out of the way with s.mu held, so that no new
// session can pick it up half-deleted.
func (s *Server) removeStagings(workload string, stale func(os.FileInfo) bool) ([]string, error) {
	names, err := recvStagings(s.cfg.Store, workload)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(s.cfg.Store.root, stagingName)
	var removed []string
	var errs []error
	for _, name := range names {
		trash, err := s.claimStaging(dir, name, stale)
		if err != nil {
			errs = append(errs, err)
		}
		if trash == "" {
			continue
		}
		if err := os.RemoveAll(trash); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, name)
	}
	return removed, errors.Join(errs...)
}

// claimStaging renames dir/name to a trash name if no session uses it
// and stale accepts it, and returns the trash path ("" if not).
func (s *Server) claimStaging(dir, name string, stale func(os.FileInfo) bool) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byKey[name] != nil {
		return "", nil
	}
	p := filepath.Join(dir, name)
	fi, err := os.Stat(p)
	if err != nil || !stale(fi) {
		return "", nil
	}
	trash, err := os.MkdirTemp(dir, "remove-")
	if err != nil {
		return "", err
	}
	if err := os.Rename(p, filepath.Join(trash, "r")); err != nil {
		os.Remove(trash)
		return "", err
	}
	return trash, nil
}
