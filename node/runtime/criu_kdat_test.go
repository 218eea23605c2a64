package runtime

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSeedKdat: after seeding, CRIU loads its kernel-feature cache instead
// of probing the kernel, a fresh cache is kept, and one older than the
// boot is written again.
func TestSeedKdat(t *testing.T) {
	c := needCRIU(t) // NewCRIU seeds it
	var st syscall.Statfs_t
	if err := syscall.Statfs("/run", &st); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	did, err := seedKdat(ctx, c.cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Type == tmpfsMagic {
		if did != "tmpfs" {
			t.Fatalf("on a tmpfs /run seedKdat did %q, want tmpfs (CRIU keeps its own cache)", did)
		}
	} else {
		if did != "kept" {
			t.Fatalf("second seeding did %q, want kept", did)
		}
		old := time.Unix(1, 0)
		if err := os.Chtimes(kdatPath, old, old); err != nil {
			t.Fatal(err)
		}
		if did, err := seedKdat(ctx, c.cfg.Path); err != nil || did != "written" {
			t.Fatalf("a cache from before the boot: seedKdat did %q (%v), want written", did, err)
		}
	}
	dir := t.TempDir()
	out, err := exec.Command(c.cfg.Path, "check", "-v4", "-o", filepath.Join(dir, "check.log")).CombinedOutput()
	if err != nil {
		t.Fatalf("criu check: %v: %s", err, out)
	}
	log, err := os.ReadFile(filepath.Join(dir, "check.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "Loaded kdat cache from "+kdatPath) {
		t.Fatalf("criu did not load %s; its log begins:\n%.600s", kdatPath, log)
	}
}
