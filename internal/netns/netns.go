// Package netns gives tests stand-in hosts: named Linux network namespaces
// (ip netns), optionally joined to the root namespace by a veth pair. It
// needs root and iproute2's ip. Namespaces are named Prefix + a label +
// the creating process's PID + a random suffix, so that parallel and
// aborted runs never collide and CleanupStale can tell leftovers (whose
// creator is gone) from namespaces still in use.
//
// Commands run inside a namespace through `nsenter --net=PATH`, which
// enters only the network namespace; `ip netns exec` would also give the
// command a private mount namespace, which CRIU cannot dump.
package netns

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Prefix starts the name of every namespace this package creates.
const Prefix = "lbt-"

// runDir is where ip netns keeps its namespace files.
const runDir = "/run/netns"

// NS is one network namespace created by New.
type NS struct {
	name string
	id   string // the random suffix, also in the veth names

	mu     sync.Mutex // guards closed and veth
	closed bool
	veth   string // the root-side veth, "" until Veth
}

// New creates a network namespace named Prefix+label-<pid>-<random> and
// brings its loopback up. label may be empty; keep it short.
func New(label string) (*NS, error) {
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, errors.New("netns: the ip command (iproute2) is not installed or not on PATH")
	}
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	id := hex.EncodeToString(b[:])
	name := Prefix
	if label != "" {
		name += label + "-"
	}
	name += strconv.Itoa(os.Getpid()) + "-" + id
	if err := ip("netns", "add", name); err != nil {
		return nil, err
	}
	ns := &NS{name: name, id: id}
	if err := ns.ip("link", "set", "lo", "up"); err != nil {
		return nil, errors.Join(err, ns.Close())
	}
	return ns, nil
}

// Name is the namespace's name, as ip netns lists it.
func (ns *NS) Name() string { return ns.name }

// Path is the namespace's file, for nsenter --net= or setns.
func (ns *NS) Path() string { return filepath.Join(runDir, ns.name) }

// Veth joins the namespace to the root namespace with a veth pair:
// hostIP/prefix on the root side, nsIP/prefix inside, both links up. The
// pair is named lbt<random>h / lbt<random>n (within IFNAMSIZ).
func (ns *NS) Veth(hostIP, nsIP string, prefix int) error {
	host, peer := "lbt"+ns.id+"h", "lbt"+ns.id+"n"
	if err := ip("link", "add", host, "type", "veth", "peer", "name", peer, "netns", ns.name); err != nil {
		return err
	}
	ns.mu.Lock()
	ns.veth = host
	ns.mu.Unlock()
	steps := [][]string{
		{"addr", "add", fmt.Sprintf("%s/%d", hostIP, prefix), "dev", host},
		{"link", "set", host, "up"},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return err
		}
	}
	if err := ns.ip("addr", "add", fmt.Sprintf("%s/%d", nsIP, prefix), "dev", peer); err != nil {
		return err
	}
	return ns.ip("link", "set", peer, "up")
}

// Command prepares name with args to run inside the namespace (network
// namespace only, through nsenter).
func (ns *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=" + ns.Path(), "--", name}, args...)...)
}

// Close deletes the veth pair and the namespace. It is idempotent.
func (ns *NS) Close() error {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if ns.closed {
		return nil
	}
	ns.closed = true
	var errs []error
	if ns.veth != "" && linkExists(ns.veth) {
		errs = append(errs, ip("link", "del", ns.veth))
	}
	if _, err := os.Stat(ns.Path()); err == nil {
		errs = append(errs, ip("netns", "del", ns.name))
	}
	return errors.Join(errs...)
}

// ip runs ip inside the namespace.
func (ns *NS) ip(args ...string) error { return ip(append([]string{"-n", ns.name}, args...)...) }

// ip runs the ip command and returns its output in the error on failure.
func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("netns: ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func linkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// CleanupStale deletes the namespaces whose names start with prefix (which
// must itself start with Prefix) and whose creating process is gone, with
// every process still in them and their veth pairs (a veth dies with its
// namespace end). It returns the names it deleted.
func CleanupStale(prefix string) ([]string, error) {
	if !strings.HasPrefix(prefix, Prefix) {
		return nil, fmt.Errorf("netns: CleanupStale(%q): the prefix must start with %q", prefix, Prefix)
	}
	entries, err := os.ReadDir(runDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var deleted []string
	var errs []error
	for _, e := range entries {
		n := e.Name()
		if !strings.HasPrefix(n, prefix) || creatorAlive(n) {
			continue
		}
		staleProcs(n)
		if err := ip("netns", "del", n); err != nil {
			errs = append(errs, err)
			continue
		}
		deleted = append(deleted, n)
	}
	return deleted, errors.Join(errs...)
}

// creatorAlive reports whether the process whose PID is in the name
// (…-<pid>-<random>) still exists. Names without one count as alive.
func creatorAlive(name string) bool {
	parts := strings.Split(name, "-")
	if len(parts) < 3 {
		return true
	}
	pid, err := strconv.Atoi(parts[len(parts)-2])
	if err != nil || pid <= 0 {
		return true
	}
	err = syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
