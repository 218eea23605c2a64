package host

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestParseCRIUVersion(t *testing.T) {
	cases := []struct {
		out  string
		want version
		err  bool
	}{
		{"Version: 4.2.1\n", version{4, 2, 1}, false},
		{"Version: 4.2\nGitID: v4.2-12-gabcdef\n", version{4, 2, 0}, false},
		{"Version: 3.17.1\n", version{3, 17, 1}, false},
		{"  Version:  10.0.3", version{10, 0, 3}, false},
		{"criu: command not found", version{}, true},
		{"Version: four", version{}, true},
		{"", version{}, true},
	}
	for _, tc := range cases {
		got, err := parseCRIUVersion(tc.out)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseCRIUVersion(%q) = %v, %v; want %v, err %v", tc.out, got, err, tc.want, tc.err)
		}
		if err != nil && !errors.Is(err, errNoVersion) {
			t.Errorf("parseCRIUVersion(%q): error %v is not errNoVersion", tc.out, err)
		}
	}
}

func TestCRIUNewEnough(t *testing.T) {
	for s, want := range map[string]bool{
		"4.2.0": true, "4.2.1": true, "4.10.0": true, "5.0.0": true,
		"4.1.1": false, "3.17.1": false, "": false, "x": false,
	} {
		if got := criuNewEnough(s); got != want {
			t.Errorf("criuNewEnough(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestCRIUReason(t *testing.T) {
	cases := []struct {
		out  string
		err  error
		want string
	}{
		{"Error (criu/rlimit.c:1): rlimit: Can't setup RLIMIT_NOFILE\nError (criu/vdso.c:2): vdso: Unexpected rt vDSO area bounds\n", errExit1,
			"vdso: Unexpected rt vDSO area bounds"},
		{"Warn  (criu/cr-check.c:824): Dirty tracking is OFF. Memory snapshot will not work.\n", errExit1,
			"Dirty tracking is OFF. Memory snapshot will not work."},
		{"CRIU needs to have the CAP_SYS_ADMIN or the CAP_CHECKPOINT_RESTORE capability: \nsetcap cap_checkpoint_restore+eip /x/criu\n", errExit1,
			"CRIU needs to have the CAP_SYS_ADMIN or the CAP_CHECKPOINT_RESTORE capability: setcap cap_checkpoint_restore+eip /x/criu"},
		{"", errExit1, "exit status 1"},
	}
	for _, tc := range cases {
		if got := criuReason([]byte(tc.out), tc.err); got != tc.want {
			t.Errorf("criuReason(%q) = %q, want %q", tc.out, got, tc.want)
		}
	}
}

func TestFindCRIU(t *testing.T) {
	dir := t.TempDir()
	installed := filepath.Join(dir, "criu")
	onPath := func(string) (string, error) { return "/usr/sbin/criu", nil }
	nowhere := func(string) (string, error) { return "", errors.New("not found") }
	if got := findCRIU(installed, nowhere); got != "" {
		t.Errorf("nothing installed: %q", got)
	}
	if got := findCRIU(installed, onPath); got != "/usr/sbin/criu" {
		t.Errorf("only on PATH: %q", got)
	}
	if err := os.Symlink(filepath.Join(dir, "missing"), installed); err != nil {
		t.Fatal(err)
	}
	if got := findCRIU(installed, onPath); got != "/usr/sbin/criu" {
		t.Errorf("dangling symlink: %q", got)
	}
	target := filepath.Join(dir, "missing")
	if err := os.WriteFile(target, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := findCRIU(installed, onPath); got != installed {
		t.Errorf("installed symlink to an executable: %q", got)
	}
}
