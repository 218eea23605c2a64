package main

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckWorkloadInit: --workload-init must name an executable file;
// none at all is allowed (shells then run as PID 1) and logged.
func TestCheckWorkloadInit(t *testing.T) {
	dir := t.TempDir()
	exe, plain := filepath.Join(dir, "init"), filepath.Join(dir, "plain")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	log := slog.New(slog.NewTextHandler(&logged, nil))
	for path, ok := range map[string]bool{exe: true, "": true, plain: false, dir: false, filepath.Join(dir, "missing"): false} {
		err := checkWorkloadInit(path, log)
		if ok != (err == nil) {
			t.Errorf("%q: %v, want ok %v", path, err, ok)
		}
		if err != nil && (!errors.Is(err, errUsage) || !strings.Contains(err.Error(), "--workload-init")) {
			t.Errorf("%q: %v, want a usage error naming --workload-init", path, err)
		}
	}
	if !strings.Contains(logged.String(), "no workload init") {
		t.Errorf("running without an init was not logged: %q", logged.String())
	}
}
