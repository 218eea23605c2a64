package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// InstalledCRIU is where deploy/criu/install.sh links the criu lifeboat
// should use: the system criu when it is new enough, else a private copy.
const InstalledCRIU = "/usr/local/libexec/lifeboat/criu"

// installHint tells the operator how to get a criu that works.
const installHint = "run deploy/criu/install.sh as root"

// minCRIU is the oldest CRIU that works on current kernels: 3.x fails
// `criu check` on kernels ≥ 6.13 (vDSO layout), 4.1 cannot dump TCP or UDP
// sockets (CRIU issue #2705).
var minCRIU = version{4, 2, 0}

// errNoVersion is returned when `criu --version` output has no version.
var errNoVersion = errors.New("no \"Version: X.Y[.Z]\" line")

// FindCRIU returns the criu to use: InstalledCRIU when it is there and
// executable, else "criu" on PATH, else "".
func FindCRIU() string {
	return findCRIU(InstalledCRIU, exec.LookPath)
}

func findCRIU(installed string, lookPath func(string) (string, error)) string {
	if fi, err := os.Stat(installed); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return installed
	}
	if p, err := lookPath("criu"); err == nil {
		return p
	}
	return ""
}

// version is a CRIU release: major, minor, patch.
type version [3]int

func (v version) less(w version) bool {
	for i := range v {
		if v[i] != w[i] {
			return v[i] < w[i]
		}
	}
	return false
}

var versionRE = regexp.MustCompile(`(?m)^\s*Version:\s*(\d+)\.(\d+)(?:\.(\d+))?`)

// parseCRIUVersion reads the output of `criu --version` ("Version: 4.2.1",
// possibly followed by a GitID line).
func parseCRIUVersion(out string) (version, error) {
	m := versionRE.FindStringSubmatch(out)
	if m == nil {
		return version{}, errNoVersion
	}
	var v version
	for i, s := range m[1:] {
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return version{}, fmt.Errorf("%w: %q", errNoVersion, m[0])
		}
		v[i] = n
	}
	return v, nil
}

// criuNewEnough reports whether the version string s (as in
// Report.CRIUVersion) is at least minCRIU.
func criuNewEnough(s string) bool {
	v, err := parseCRIUVersion("Version: " + s)
	return err == nil && !v.less(minCRIU)
}

// criuReason picks what CRIU's output says about a failure: the first
// Error (else Warn) line without its "(file.c:N): " prefix, skipping the
// harmless RLIMIT_NOFILE complaint of a root without CAP_SYS_RESOURCE;
// else the whole output on one line; else err.
func criuReason(out []byte, err error) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for _, level := range []string{"Error", "Warn"} {
		for _, l := range lines {
			l = strings.TrimSpace(l)
			if strings.HasPrefix(l, level) && !strings.Contains(l, "RLIMIT_NOFILE") {
				return stripLocation(l)
			}
		}
	}
	if all := strings.Join(strings.Fields(string(out)), " "); all != "" {
		return truncate(all, maxReason)
	}
	if err != nil {
		return err.Error()
	}
	return "no output"
}

// maxReason bounds a reason quoted from command output.
const maxReason = 240

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// stripLocation turns "Error (criu/cr-check.c:824): text" into "text".
func stripLocation(line string) string {
	if i := strings.Index(line, "): "); i >= 0 && strings.Contains(line[:i], "(") {
		return strings.TrimSpace(line[i+3:])
	}
	return line
}

// criuVersion fills CRIUPath and CRIUVersion.
func (p *prober) criuVersion(ctx context.Context, r *Report) Check {
	c := Check{Name: "criu"}
	r.CRIUPath = p.cfg.CRIUPath
	if r.CRIUPath == "" {
		c.Detail = fmt.Sprintf("not found at %s or on PATH: %s", InstalledCRIU, installHint)
		return c
	}
	out, err := p.run(ctx, r.CRIUPath, "--version")
	if err != nil {
		c.Detail = fmt.Sprintf("%s --version failed: %s; %s", r.CRIUPath, criuReason(out, err), installHint)
		return c
	}
	v, err := parseCRIUVersion(string(out))
	if err != nil {
		c.Detail = fmt.Sprintf("%s --version: %v", r.CRIUPath, err)
		return c
	}
	r.CRIUVersion = fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2])
	c.OK = !v.less(minCRIU)
	c.Detail = fmt.Sprintf("%s at %s", r.CRIUVersion, r.CRIUPath)
	if !c.OK {
		c.Detail += fmt.Sprintf(": CRIU %d.%d or newer is needed (older ones fail on this kernel or cannot dump sockets); %s",
			minCRIU[0], minCRIU[1], installHint)
	}
	return c
}

// criuCheck fills CRIUCheck from `criu check`.
func (p *prober) criuCheck(ctx context.Context, r *Report) Check {
	c := Check{Name: "criu check"}
	if r.CRIUVersion == "" {
		c.Detail = "skipped: no criu that runs"
		return c
	}
	out, err := p.run(ctx, r.CRIUPath, "check")
	if err != nil {
		c.Detail = "failed: " + criuReason(out, err)
		if !r.Root {
			c.Detail += " (criu check needs root)"
		}
		return c
	}
	r.CRIUCheck, c.OK = true, true
	c.Detail = "passed"
	return c
}

// criuFeature runs `criu check --feature name`: nil when supported, else
// an error carrying CRIU's reason.
func (p *prober) criuFeature(ctx context.Context, criu, name string) error {
	out, err := p.run(ctx, criu, "check", "--feature", name)
	if err != nil {
		return errors.New(criuReason(out, err))
	}
	return nil
}
