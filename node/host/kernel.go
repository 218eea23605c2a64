package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// lazyPipeSize is the fs.pipe-max-size lazy pages need: below it CRIU's
// page server fails with "page-pipe: tee: 65536: Operation not permitted".
const lazyPipeSize = 4 << 20

// pipeMaxSizeFile holds the fs.pipe-max-size sysctl.
const pipeMaxSizeFile = "/proc/sys/fs/pipe-max-size"

// userfaultfdNR is the userfaultfd syscall number per GOARCH; the frozen
// syscall package does not have it.
var userfaultfdNR = map[string]uintptr{
	"amd64":   323,
	"arm64":   282,
	"riscv64": 282,
	"386":     374,
}

// errNoUserfaultfdNR is returned on architectures without a known number.
var errNoUserfaultfdNR = errors.New("syscall number unknown on " + runtime.GOARCH)

// openUserfaultfd reports (as nil) whether this process can get a
// userfaultfd: through the syscall, or else by opening /dev/userfaultfd.
func openUserfaultfd() error {
	sysErr := error(errNoUserfaultfdNR)
	if nr, ok := userfaultfdNR[runtime.GOARCH]; ok {
		fd, _, errno := syscall.Syscall(nr, uintptr(syscall.O_CLOEXEC|syscall.O_NONBLOCK), 0, 0)
		if errno == 0 {
			return syscall.Close(int(fd))
		}
		sysErr = errno
	}
	f, err := os.OpenFile("/dev/userfaultfd", os.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("userfaultfd syscall: %v; %v", sysErr, err)
	}
	return f.Close()
}

// spawnInNamespace runs /bin/true in new namespaces (cloneflags) and
// returns nil when it exits 0.
func spawnInNamespace(ctx context.Context, cloneflags uintptr) error {
	cmd := exec.CommandContext(ctx, "/bin/true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: cloneflags}
	cmd.WaitDelay = time.Second
	return cmd.Run()
}

// runCommand is the default Config.Run. WaitDelay keeps a child that
// inherited the output pipe from holding us past the deadline.
func runCommand(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = time.Second
	return cmd.CombinedOutput()
}

// capNames are the capabilities CRIU uses, by bit number, for the root check.
var capNames = []struct {
	bit  uint
	name string
}{
	{12, "CAP_NET_ADMIN"},
	{19, "CAP_SYS_PTRACE"},
	{21, "CAP_SYS_ADMIN"},
	{24, "CAP_SYS_RESOURCE"},
}

// missingCaps lists the capNames absent from CapEff in /proc/self/status
// text; nil when the line is missing or unreadable.
func missingCaps(status []byte) []string {
	for _, line := range bytes.Split(status, []byte("\n")) {
		hex, ok := bytes.CutPrefix(line, []byte("CapEff:"))
		if !ok {
			continue
		}
		eff, err := strconv.ParseUint(strings.TrimSpace(string(hex)), 16, 64)
		if err != nil {
			return nil
		}
		var missing []string
		for _, c := range capNames {
			if eff&(1<<c.bit) == 0 {
				missing = append(missing, c.name)
			}
		}
		return missing
	}
	return nil
}

// root fills Root.
func (p *prober) root(r *Report) Check {
	c := Check{Name: "root"}
	uid := p.cfg.Euid()
	r.Root, c.OK = uid == 0, uid == 0
	if !c.OK {
		c.Detail = fmt.Sprintf("euid %d: criu mode needs root", uid)
		return c
	}
	c.Detail = "euid 0"
	status, err := p.cfg.ReadFile("/proc/self/status")
	if err != nil {
		return c
	}
	if m := missingCaps(status); len(m) > 0 {
		c.Detail += ", without " + strings.Join(m, ", ")
		if len(m) == 1 && m[0] == "CAP_SYS_RESOURCE" {
			c.Detail += " (harmless: CRIU only logs \"Can't setup RLIMIT_NOFILE\")"
		}
	}
	return c
}

// userfaultfd fills Userfaultfd: the kernel hands out a userfaultfd and,
// when there is a criu that runs, it supports uffd-noncoop (needed for lazy pages
// of processes that fork).
func (p *prober) userfaultfd(ctx context.Context, r *Report) Check {
	c := Check{Name: "userfaultfd"}
	if err := p.cfg.Userfaultfd(); err != nil {
		c.Detail = "not available: " + err.Error()
		return c
	}
	c.Detail = "kernel hands out a userfaultfd"
	if r.CRIUVersion != "" {
		if err := p.criuFeature(ctx, r.CRIUPath, "uffd-noncoop"); err != nil {
			c.Detail += "; but criu: uffd-noncoop: " + err.Error()
			return c
		}
		c.Detail += "; criu: uffd-noncoop is supported"
	}
	r.Userfaultfd, c.OK = true, true
	return c
}

// softDirty fills SoftDirty from `criu check --feature mem_dirty_track`.
func (p *prober) softDirty(ctx context.Context, r *Report) Check {
	c := Check{Name: "soft-dirty"}
	if r.CRIUVersion == "" {
		c.Detail = "unknown: needs a criu that runs (criu check --feature mem_dirty_track)"
		return c
	}
	if err := p.criuFeature(ctx, r.CRIUPath, "mem_dirty_track"); err != nil {
		c.Detail = "not supported (" + err.Error() + "): no pre-dump or --track-mem, every checkpoint is a full dump"
		return c
	}
	r.SoftDirty, c.OK = true, true
	c.Detail = "memory changes are tracked: pre-dump and --track-mem work"
	return c
}

// lazyPages fills LazyPages: userfaultfd works, there is a criu to serve
// the pages, and fs.pipe-max-size is at least lazyPipeSize.
func (p *prober) lazyPages(r *Report) Check {
	c := Check{Name: "lazy pages"}
	var why []string
	if !r.Userfaultfd {
		why = append(why, "needs userfaultfd")
	}
	if r.CRIUVersion == "" {
		why = append(why, "needs a criu that runs")
	}
	size, err := p.pipeMaxSize()
	switch {
	case err != nil:
		why = append(why, err.Error())
	case size < lazyPipeSize:
		why = append(why, fmt.Sprintf("fs.pipe-max-size is %d: raise fs.pipe-max-size to %d (sysctl -w fs.pipe-max-size=%d)",
			size, lazyPipeSize, lazyPipeSize))
	}
	if len(why) > 0 {
		c.Detail = strings.Join(why, "; ")
		return c
	}
	r.LazyPages, c.OK = true, true
	c.Detail = fmt.Sprintf("userfaultfd works and fs.pipe-max-size is %d", size)
	return c
}

func (p *prober) pipeMaxSize() (int, error) {
	b, err := p.cfg.ReadFile(pipeMaxSizeFile)
	if err != nil {
		return 0, fmt.Errorf("fs.pipe-max-size: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("fs.pipe-max-size: %w", err)
	}
	return n, nil
}

// namespace runs the Spawn probe for one kind of namespace and sets *ok.
func (p *prober) namespace(ctx context.Context, r *Report, name string, flag uintptr, ok *bool) Check {
	c := Check{Name: name}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	if err := p.cfg.Spawn(ctx, flag); err != nil {
		c.Detail = "cannot start a process in a new one: " + err.Error()
		if !r.Root {
			c.Detail += " (needs root)"
		}
		return c
	}
	*ok, c.OK = true, true
	c.Detail = "a process starts and exits in a new one"
	return c
}
