package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests need neither root nor CRIU: they check the pieces of the
// criu mode that are plain Go.

func TestCRIUFixFile(t *testing.T) {
	const marker = "lifeboat: "
	now := time.Unix(1700000000, 0)
	tests := []struct {
		name     string
		existing *string // nil: no file
		size     int64   // recorded, -1 for none
		want     string  // prefix of the result; its length must be size
		kept     string  // the whole old file kept beside, "" for none
	}{
		{name: "missing", size: 200, want: marker + "200 bytes"},
		{name: "missing, tiny", size: 5, want: "lifeb"},
		{name: "missing, no size", size: -1, want: ""},
		{name: "longer", existing: criuStrPtr("0123456789after\n"), size: 10, want: "0123456789", kept: "0123456789after\n"},
		{name: "shorter", existing: criuStrPtr("0123"), size: 100, want: "0123" + marker + "96 bytes"},
		{name: "same", existing: criuStrPtr("0123"), size: 4, want: "0123"},
		{name: "no size recorded", existing: criuStrPtr("0123"), size: -1, want: "0123"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sub", "output.log")
			if tc.existing != nil {
				os.MkdirAll(filepath.Dir(path), 0o755)
				if err := os.WriteFile(path, []byte(*tc.existing), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := fixFile(imageFile{Path: path, Size: tc.size, Mode: syscall.S_IFREG | 0o600, Writing: true}, now); err != nil {
				t.Fatal(err)
			}
			criuCheckFixed(t, path, tc.size, tc.want)
			kept, _ := filepath.Glob(path + ".*")
			switch {
			case tc.kept == "" && len(kept) > 0:
				t.Errorf("kept %v, want nothing kept", kept)
			case tc.kept != "" && (len(kept) != 1 || kept[0] != path+".1700000000"):
				t.Errorf("kept %v, want %s.1700000000", kept, path)
			case tc.kept != "":
				if b, _ := os.ReadFile(kept[0]); string(b) != tc.kept {
					t.Errorf("kept %q, want %q", b, tc.kept)
				}
			}
		})
	}
}

func criuStrPtr(s string) *string { return &s }

// criuCheckFixed checks the file's size, start and permission bits.
func criuCheckFixed(t *testing.T, path string, size int64, want string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if size >= 0 && int64(len(b)) != size {
		t.Errorf("size %d, want %d", len(b), size)
	}
	if !strings.HasPrefix(string(b), want) {
		t.Errorf("content %q, want it to start with %q", b, want)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
}

// TestCRIUFillerHole: a gap larger than fillerDense is mostly a hole, so
// standing in for a big log costs no disk.
func TestCRIUFillerHole(t *testing.T) {
	path := filepath.Join(t.TempDir(), "output.log")
	const size = 64 << 20
	if err := fixFile(imageFile{Path: path, Size: size, Mode: syscall.S_IFREG | 0o600}, time.Now()); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != size {
		t.Errorf("size %d, want %d", st.Size, size)
	}
	if used := st.Blocks * 512; used > 4*fillerDense {
		t.Errorf("the filler takes %d bytes of disk, want about %d", used, fillerDense)
	}
	f, _ := os.Open(path)
	defer f.Close()
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, size-1); err != nil || last[0] != '\n' {
		t.Errorf("last byte %q (%v), want a newline", last, err)
	}
}

func TestCRIUFixFileRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	err := fixFile(imageFile{Path: dir, Size: 10, Mode: syscall.S_IFREG | 0o600}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("fixFile on a directory: %v", err)
	}
}

func TestCRIULogError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "restore.log")
	log := "(00.000100) Version: 4.2.1\n" +
		"(00.025204) Error (criu/util.c:1534): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted\n" +
		"(00.030000) Warn  (criu/cr-restore.c:1050): something\n" +
		"(00.031000) Error (criu/files-reg.c:2175): File x has bad size 110 (expect 81)\n" +
		"(00.032000) Error (criu/cr-restore.c:2000): Restoring FAILED.\n"
	if err := os.WriteFile(path, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	want := "Error (criu/files-reg.c:2175): File x has bad size 110 (expect 81)"
	if got := criuLogError(path); got != want {
		t.Errorf("criuLogError = %q, want %q", got, want)
	}
	l := &criuOpLog{dir: criuMustOpen(t, filepath.Dir(path)), name: "restore.log"}
	defer l.Close()
	err := criuError(ErrRestore, Workload{Spec: criuSpecID("w1")}, "restoring", errors.New("rlimit"), l)
	if !errors.Is(err, ErrRestore) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
		t.Errorf("criuError = %v", err)
	}
}

func TestCRIULogsPruned(t *testing.T) {
	w := Workload{Spec: criuSpecID("w1"), Dir: t.TempDir()}
	start := time.Unix(1700000000, 0)
	for i := range criuLogsKept + 3 {
		l, err := newCRIUOpLog(w, "dump", start.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(l.Path(), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		l.Close()
	}
	names, _ := filepath.Glob(filepath.Join(criuLogDir(w), "dump-*.log"))
	if len(names) != criuLogsKept {
		t.Fatalf("%d logs kept, want %d: %v", len(names), criuLogsKept, names)
	}
	if !strings.Contains(names[len(names)-1], "20231114T221327") {
		t.Errorf("the newest log is gone: %v", names)
	}
}

func TestCRIUConfigValidate(t *testing.T) {
	if err := DefaultCRIUConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for name, mut := range map[string]func(*CRIUConfig){
		"Path":        func(c *CRIUConfig) { c.Path = "" },
		"LogLevel":    func(c *CRIUConfig) { c.LogLevel = 5 },
		"NetworkLock": func(c *CRIUConfig) { c.NetworkLock = "ebtables" },
		"TCPClose":    func(c *CRIUConfig) { c.TCPClose = false }, // skip without it
	} {
		c := DefaultCRIUConfig()
		mut(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("bad %s: Validate() = %v, want an error naming it", name, err)
		}
	}
	c := DefaultCRIUConfig()
	c.Path = filepath.Join(t.TempDir(), "no-criu")
	if _, err := NewCRIU(c); !errors.Is(err, ErrUnsupported) {
		t.Errorf("NewCRIU without criu: %v, want ErrUnsupported", err)
	}
}

func criuMustOpen(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
