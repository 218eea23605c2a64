package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
)

// DefaultTimeout bounds each command and namespace probe.
const DefaultTimeout = 10 * time.Second

// ErrBadConfig marks a Config that Validate rejects.
var ErrBadConfig = errors.New("host: bad config")

// Check is one line of the report.
type Check struct {
	// Name is what was checked: "root", "criu", "criu check", …
	Name string `json:"name"`
	// OK reports whether the check passed.
	OK bool `json:"ok"`
	// Detail says what was found, or why not and what to do.
	Detail string `json:"detail"`
}

// Report is what this host can do for lifeboat.
type Report struct {
	// Root reports whether the process runs with effective uid 0.
	Root bool `json:"root"`
	// CRIUPath is the criu probed; "" when none was found.
	CRIUPath string `json:"criu_path"`
	// CRIUVersion is its version, "4.2.1"; "" when it does not run.
	CRIUVersion string `json:"criu_version"`
	// CRIUCheck reports whether `criu check` passed.
	CRIUCheck bool `json:"criu_check"`
	// Userfaultfd reports whether the kernel hands out a userfaultfd and
	// the criu, when one runs, supports uffd-noncoop.
	Userfaultfd bool `json:"userfaultfd"`
	// SoftDirty reports whether criu can track dirty memory (pre-dump,
	// --track-mem).
	SoftDirty bool `json:"soft_dirty"`
	// LazyPages reports whether lazy-pages migration can work: userfaultfd,
	// a criu that runs, and fs.pipe-max-size ≥ 4 MiB.
	LazyPages bool `json:"lazy_pages"`
	// PIDNamespace reports whether a process can start in a new PID namespace.
	PIDNamespace bool `json:"pid_namespace"`
	// NetNamespace reports whether a process can start in a new network namespace.
	NetNamespace bool `json:"net_namespace"`
	// Nftables reports whether nft runs and can list tables.
	Nftables bool `json:"nftables"`
	// Checks are the lines of the report, always in the same order.
	Checks []Check `json:"checks"`
	// Modes are the checkpoint modes this host can serve: fsm.ModeApp and
	// fsm.ModeNone always, then fsm.ModeCRIU when root, CRIU ≥ 4.2,
	// `criu check` passes and PID namespaces work.
	Modes []string `json:"modes"`
}

// Config says what Probe runs. Nil functions and a zero Timeout take the
// defaults of DefaultConfig, so tests replace only what they fake.
type Config struct {
	// CRIUPath is the criu to probe; "" means there is none.
	// DefaultConfig sets it to FindCRIU().
	CRIUPath string
	// Run runs a command and returns its combined output; nil uses
	// exec.CommandContext(...).CombinedOutput. Its ctx carries Timeout.
	Run func(ctx context.Context, name string, args ...string) ([]byte, error)
	// Timeout bounds each command and namespace probe.
	Timeout time.Duration
	// Euid returns the effective uid; nil uses os.Geteuid.
	Euid func() int
	// Userfaultfd returns nil when a userfaultfd can be had; nil uses the
	// userfaultfd syscall, else /dev/userfaultfd.
	Userfaultfd func() error
	// Spawn starts a trivial process with these clone flags and returns nil
	// when it exits 0; nil runs /bin/true.
	Spawn func(ctx context.Context, cloneflags uintptr) error
	// ReadFile reads /proc files; nil uses os.ReadFile.
	ReadFile func(name string) ([]byte, error)
}

// DefaultConfig probes the real host with the criu FindCRIU picks.
func DefaultConfig() Config {
	return Config{
		CRIUPath:    FindCRIU(),
		Run:         runCommand,
		Timeout:     DefaultTimeout,
		Euid:        os.Geteuid,
		Userfaultfd: openUserfaultfd,
		Spawn:       spawnInNamespace,
		ReadFile:    os.ReadFile,
	}
}

// Validate rejects a negative Timeout.
func (c Config) Validate() error {
	if c.Timeout < 0 {
		return fmt.Errorf("%w: Timeout %v is negative", ErrBadConfig, c.Timeout)
	}
	return nil
}

// withDefaults fills nil functions and a non-positive Timeout.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Run == nil {
		c.Run = d.Run
	}
	if c.Timeout <= 0 {
		c.Timeout = d.Timeout
	}
	if c.Euid == nil {
		c.Euid = d.Euid
	}
	if c.Userfaultfd == nil {
		c.Userfaultfd = d.Userfaultfd
	}
	if c.Spawn == nil {
		c.Spawn = d.Spawn
	}
	if c.ReadFile == nil {
		c.ReadFile = d.ReadFile
	}
	return c
}

// prober carries the config through the individual checks.
type prober struct {
	cfg Config
}

// run runs one command under the probe timeout.
func (p *prober) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	return p.cfg.Run(ctx, name, args...)
}

// Probe finds out what this host can do. It does not fail: what cannot
// be checked is reported as not available, with the reason in its Check.
// It takes a few hundred milliseconds on a host with criu.
func Probe(ctx context.Context, cfg Config) Report {
	p := &prober{cfg: cfg.withDefaults()}
	var r Report
	// Function calls run left to right: later checks read what earlier
	// ones found (root, the criu path, userfaultfd).
	r.Checks = append(r.Checks,
		p.root(&r),
		p.criuVersion(ctx, &r),
		p.criuCheck(ctx, &r),
		p.userfaultfd(ctx, &r),
		p.softDirty(ctx, &r),
		p.lazyPages(&r),
		p.namespace(ctx, &r, "pid namespace", syscall.CLONE_NEWPID, &r.PIDNamespace),
		p.namespace(ctx, &r, "net namespace", syscall.CLONE_NEWNET, &r.NetNamespace),
		p.nftables(ctx, &r),
	)
	r.Modes = modes(r)
	return r
}

// modes decides the checkpoint modes from the facts in r.
func modes(r Report) []string {
	m := []string{fsm.ModeApp, fsm.ModeNone}
	if r.Root && criuNewEnough(r.CRIUVersion) && r.CRIUCheck && r.PIDNamespace {
		m = append(m, fsm.ModeCRIU)
	}
	return m
}
