package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CRIU's kernel-feature cache.
//
// Every criu run first learns what the kernel can do (kerndat). Some of
// the probes are slow: one makes a network namespace with a veth pair,
// about 20 ms here, in every dump and every restore. CRIU keeps the
// answers in /run/criu.kdat, but only when /run is a tmpfs (so that a
// reboot, perhaps into another kernel, drops them); it reads the file
// wherever it is. On hosts whose /run is a plain directory (this
// project's test machines) it never writes one, and a move pays the
// probes twice: 40 ms of a stall that should stay under 100.
//
// seedKdat writes the cache on such hosts: it runs `criu check` in a
// private mount namespace with a tmpfs on /run, where CRIU saves the
// cache, and copies the file to the real /run. A cache older than the
// boot is written again, as a reboot would have dropped it on tmpfs.

// kdatPath is where CRIU reads its cache.
const kdatPath = "/run/criu.kdat"

// tmpfsMagic is TMPFS_MAGIC from statfs(2).
const tmpfsMagic = 0x01021994

// seedKdat makes sure CRIU finds a fresh kernel-feature cache. It returns
// what it did ("kept", "written" or "tmpfs": CRIU writes it itself) or why
// it could not.
func seedKdat(ctx context.Context, criuPath string) (string, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs("/run", &st); err != nil {
		return "", fmt.Errorf("statfs /run: %w", err)
	}
	if st.Type == tmpfsMagic {
		return "tmpfs", nil
	}
	if fi, err := os.Stat(kdatPath); err == nil && fi.Size() > 0 {
		boot, err := bootTime()
		if err == nil && fi.ModTime().After(boot) {
			return "kept", nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// $0 is criu; its check's own verdict does not matter, only the cache.
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c",
		`mount -t tmpfs lifeboat-kdat /run && { "$0" check >/dev/null 2>&1; cat /run/criu.kdat; }`, criuPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS} // Go makes its mounts private
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil || out.Len() == 0 {
		return "", fmt.Errorf("criu check in a private mount namespace wrote no %s: %v %s", kdatPath, err, strings.TrimSpace(errOut.String()))
	}
	tmp := kdatPath + ".lifeboat-" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, out.Bytes(), 0o600); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, kdatPath); err != nil {
		_ = os.Remove(tmp)
		return "", err
	}
	return "written", nil
}

// bootTime is when this host booted (btime in /proc/stat).
func bootTime() (time.Time, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("/proc/stat btime %q: %w", v, err)
			}
			return time.Unix(s, 0), nil
		}
	}
	return time.Time{}, errors.New("/proc/stat has no btime")
}
