package host

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
)

// reply is a faked command result.
type reply struct {
	out string
	err error
}

var errExit1 = errors.New("exit status 1")

// goodHost is a root host with criu 4.2.1 where everything but soft-dirty
// works, as measured on kernel 6.18.
func goodHost() map[string]reply {
	return map[string]reply{
		"criu --version":                       {out: "Version: 4.2.1\n"},
		"criu check":                           {out: "Looks good.\n"},
		"criu check --feature uffd-noncoop":    {out: "uffd-noncoop is supported\n"},
		"criu check --feature mem_dirty_track": {out: "Warn  (criu/cr-check.c:824): Dirty tracking is OFF. Memory snapshot will not work.\n", err: errExit1},
		"nft --version":                        {out: "nftables v1.0.6 (Lester Gooch #5)\n"},
		"nft list tables":                      {out: "table inet filter\n"},
	}
}

// fakeConfig answers commands from replies (missing ones fail as exec
// would for an absent binary) and the kernel questions from the rest.
func fakeConfig(replies map[string]reply, euid int, pipeMax string) Config {
	return Config{
		CRIUPath: "criu",
		Timeout:  time.Second,
		Run: func(ctx context.Context, name string, args ...string) ([]byte, error) {
			if _, ok := ctx.Deadline(); !ok {
				return nil, errors.New("no deadline on command context")
			}
			r, ok := replies[strings.Join(append([]string{name}, args...), " ")]
			if !ok {
				return nil, errors.New("exec: not found")
			}
			return []byte(r.out), r.err
		},
		Euid:        func() int { return euid },
		Userfaultfd: func() error { return nil },
		Spawn:       func(context.Context, uintptr) error { return nil },
		ReadFile: func(name string) ([]byte, error) {
			if name == pipeMaxSizeFile {
				return []byte(pipeMax + "\n"), nil
			}
			return []byte("CapEff:\t000001fffeffffff\n"), nil
		},
	}
}

func check(t *testing.T, r Report, name string) Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in %+v", name, r.Checks)
	return Check{}
}

func TestModes(t *testing.T) {
	withCRIU := []string{fsm.ModeApp, fsm.ModeNone, fsm.ModeCRIU}
	without := []string{fsm.ModeApp, fsm.ModeNone}
	cases := []struct {
		name   string
		edit   func(c *Config, replies map[string]reply)
		want   []string
		check  string // a check whose Detail must mention detail
		detail string
	}{
		{"everything works", func(*Config, map[string]reply) {}, withCRIU, "criu", "4.2.1 at criu"},
		{"no criu", func(c *Config, _ map[string]reply) { c.CRIUPath = "" }, without, "criu", "deploy/criu/install.sh"},
		{"criu 4.1", func(_ *Config, r map[string]reply) { r["criu --version"] = reply{out: "Version: 4.1.1\n"} }, without, "criu", "4.2 or newer is needed"},
		{"criu 3.17 fails check", func(_ *Config, r map[string]reply) {
			r["criu --version"] = reply{out: "Version: 3.17.1\n"}
			r["criu check"] = reply{out: "Error (criu/vdso.c:1): vdso: Unexpected rt vDSO area bounds\n", err: errExit1}
		}, without, "criu check", "Unexpected rt vDSO area bounds"},
		{"check fails", func(_ *Config, r map[string]reply) {
			r["criu check"] = reply{out: "Error (criu/rlimit.c:9): rlimit: Can't setup RLIMIT_NOFILE\nError (criu/cr-check.c:1): seccomp: no PTRACE_O_SUSPEND_SECCOMP\n", err: errExit1}
		}, without, "criu check", "failed: seccomp: no PTRACE_O_SUSPEND_SECCOMP"},
		{"criu does not run", func(_ *Config, r map[string]reply) { delete(r, "criu --version") }, without, "criu", "exec: not found"},
		{"criu does not run, userfaultfd still reported", func(_ *Config, r map[string]reply) { delete(r, "criu --version") }, without, "userfaultfd", "kernel hands out a userfaultfd"},
		{"not root", func(c *Config, _ map[string]reply) { c.Euid = func() int { return 1000 } }, without, "root", "needs root"},
		{"no pid namespace", func(c *Config, _ map[string]reply) {
			c.Spawn = func(_ context.Context, f uintptr) error {
				if f == 0x20000000 { // CLONE_NEWPID
					return errors.New("operation not permitted")
				}
				return nil
			}
		}, without, "pid namespace", "operation not permitted"},
		{"no net namespace still serves criu", func(c *Config, _ map[string]reply) {
			c.Spawn = func(_ context.Context, f uintptr) error {
				if f == 0x40000000 { // CLONE_NEWNET
					return errors.New("operation not permitted")
				}
				return nil
			}
		}, withCRIU, "net namespace", "operation not permitted"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			replies := goodHost()
			cfg := fakeConfig(replies, 0, "4194304")
			tc.edit(&cfg, replies)
			r := Probe(context.Background(), cfg)
			if !slices.Equal(r.Modes, tc.want) {
				t.Errorf("modes %v, want %v", r.Modes, tc.want)
			}
			if c := check(t, r, tc.check); !strings.Contains(c.Detail, tc.detail) {
				t.Errorf("%s: detail %q does not mention %q", tc.check, c.Detail, tc.detail)
			}
		})
	}
}

func TestProbeFacts(t *testing.T) {
	r := Probe(context.Background(), fakeConfig(goodHost(), 0, "4194304"))
	want := Report{Root: true, CRIUPath: "criu", CRIUVersion: "4.2.1", CRIUCheck: true, Userfaultfd: true,
		LazyPages: true, PIDNamespace: true, NetNamespace: true, Nftables: true}
	got := r
	got.Checks, got.Modes = nil, nil
	if !equalFacts(got, want) {
		t.Errorf("facts %+v, want %+v", got, want)
	}
	names := make([]string, len(r.Checks))
	for i, c := range r.Checks {
		names[i] = c.Name
	}
	wantNames := []string{"root", "criu", "criu check", "userfaultfd", "soft-dirty", "lazy pages", "pid namespace", "net namespace", "nftables"}
	if !slices.Equal(names, wantNames) {
		t.Errorf("checks %v, want %v", names, wantNames)
	}
	if c := check(t, r, "soft-dirty"); c.OK || !strings.Contains(c.Detail, "Dirty tracking is OFF") {
		t.Errorf("soft-dirty %+v", c)
	}
	if c := check(t, r, "root"); !strings.Contains(c.Detail, "without CAP_SYS_RESOURCE") {
		t.Errorf("root detail %q does not name the missing capability", c.Detail)
	}
}

func equalFacts(a, b Report) bool {
	return a.Root == b.Root && a.CRIUPath == b.CRIUPath && a.CRIUVersion == b.CRIUVersion &&
		a.CRIUCheck == b.CRIUCheck && a.Userfaultfd == b.Userfaultfd && a.SoftDirty == b.SoftDirty &&
		a.LazyPages == b.LazyPages && a.PIDNamespace == b.PIDNamespace && a.NetNamespace == b.NetNamespace &&
		a.Nftables == b.Nftables
}

func TestLazyPages(t *testing.T) {
	cases := []struct {
		name    string
		pipeMax string
		edit    func(c *Config, r map[string]reply)
		want    bool
		detail  string
	}{
		{"works", "4194304", func(*Config, map[string]reply) {}, true, "4194304"},
		{"pipe too small", "1048576", func(*Config, map[string]reply) {}, false, "raise fs.pipe-max-size to 4194304"},
		{"no userfaultfd", "4194304", func(c *Config, _ map[string]reply) {
			c.Userfaultfd = func() error { return errors.New("operation not permitted") }
		}, false, "needs userfaultfd"},
		{"criu lacks uffd-noncoop", "4194304", func(_ *Config, r map[string]reply) {
			r["criu check --feature uffd-noncoop"] = reply{out: "Error (criu/cr-check.c:1): UFFD is not supported\n", err: errExit1}
		}, false, "needs userfaultfd"},
		{"no criu", "4194304", func(c *Config, _ map[string]reply) { c.CRIUPath = "" }, false, "needs a criu that runs"},
		{"criu does not run", "4194304", func(_ *Config, r map[string]reply) { delete(r, "criu --version") }, false, "needs a criu that runs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			replies := goodHost()
			cfg := fakeConfig(replies, 0, tc.pipeMax)
			tc.edit(&cfg, replies)
			r := Probe(context.Background(), cfg)
			c := check(t, r, "lazy pages")
			if r.LazyPages != tc.want || c.OK != tc.want || !strings.Contains(c.Detail, tc.detail) {
				t.Errorf("LazyPages %v, check %+v; want %v and %q", r.LazyPages, c, tc.want, tc.detail)
			}
		})
	}
}

func TestNftablesNeedsRootToList(t *testing.T) {
	r := Probe(context.Background(), fakeConfig(goodHost(), 1000, "4194304"))
	if c := check(t, r, "nftables"); r.Nftables || !strings.Contains(c.Detail, "needs root") {
		t.Errorf("Nftables %v, %+v", r.Nftables, c)
	}
	replies := goodHost()
	delete(replies, "nft --version")
	r = Probe(context.Background(), fakeConfig(replies, 0, "4194304"))
	if c := check(t, r, "nftables"); r.Nftables || !strings.Contains(c.Detail, "apt-get install nftables") {
		t.Errorf("Nftables %v, %+v", r.Nftables, c)
	}
}

// TestProbeTimesOutHungCommands: a command that never returns on its own
// is cut off by Timeout and the probe goes on.
func TestProbeTimesOutHungCommands(t *testing.T) {
	cfg := fakeConfig(goodHost(), 0, "4194304")
	cfg.Timeout = 10 * time.Millisecond
	cfg.Run = func(ctx context.Context, name string, args ...string) ([]byte, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	r := Probe(context.Background(), cfg)
	if r.CRIUVersion != "" || r.Nftables || slices.Contains(r.Modes, fsm.ModeCRIU) {
		t.Errorf("hung commands counted as working: %+v", r)
	}
	if c := check(t, r, "criu"); !strings.Contains(c.Detail, "deadline exceeded") {
		t.Errorf("criu detail %q", c.Detail)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Config{Timeout: -time.Second}).Validate(); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("negative timeout: %v", err)
	}
}
