package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lifeboat/lifeboat/internal/netns"
	"github.com/lifeboat/lifeboat/node/api"
)

// Host is one stand-in machine: a network namespace on the cluster's
// switch, a metadata emulator of its cloud (a `lifeboat emulate` process
// on the switch's root end), and the agent running inside. Its methods are safe for concurrent
// use.
type Host struct {
	Name  string // h1, h2, …
	IP    string
	Zone  string
	Cloud string
	NS    *netns.NS
	Emu   *Emulator

	c   *Cluster
	env []string // the agent's environment

	mu     sync.Mutex // guards the fields below
	cmd    *exec.Cmd  // the agent's process, nil before the first start
	done   chan struct{}
	paused bool
}

// API is the agent's admin API base URL.
func (h *Host) API() string { return "https://" + h.IP + ":7949" }

// Client is an admin API client of the agent, with the harness's client
// certificate.
func (h *Host) Client() *api.Client { return &api.Client{Base: h.API(), HTTP: h.c.creds.api} }

// APITLS is what a client of the admin API needs: the CA, and the
// harness's client certificate.
func (c *Cluster) APITLS() *tls.Config { return c.creds.apiTLS.Clone() }

// PeerAPI is the base URL of the agent's peer endpoints (its Raft port).
func (h *Host) PeerAPI() string { return "https://" + h.IP + ":7947" }

// PeerHTTP is a client of the peer endpoints with the harness's peer
// certificate (the test clock only).
func (h *Host) PeerHTTP() *http.Client { return h.c.creds.peer }

// Dir is the host's directory: data and agent.log.
func (h *Host) Dir() string { return filepath.Join(h.c.cfg.Dir, h.Name) }

// LogPath is the agent's log.
func (h *Host) LogPath() string { return filepath.Join(h.Dir(), "agent.log") }

// EmulatorLogPath is the emulator's log.
func (h *Host) EmulatorLogPath() string { return filepath.Join(h.Dir(), "emulator.log") }

// Running reports whether the agent's process is alive (paused counts).
func (h *Host) Running() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.runningLocked()
}

func (h *Host) runningLocked() bool {
	if h.done == nil {
		return false
	}
	select {
	case <-h.done:
		return false
	default:
		return true
	}
}

// Paused reports whether Pause stopped the agent and Resume has not yet
// continued it.
func (h *Host) Paused() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.paused && h.runningLocked()
}

// start launches the agent inside the namespace, appending to agent.log.
func (h *Host) start() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.runningLocked() {
		return fmt.Errorf("cluster: %s: the agent already runs (pid %d)", h.Name, h.cmd.Process.Pid)
	}
	cfg := h.c.cfg
	if err := os.MkdirAll(h.Dir(), 0o700); err != nil {
		return err
	}
	logf, err := os.OpenFile(h.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	args := []string{"agent", "--name", h.Name, "--bind", h.IP,
		"--bootstrap-expect", fmt.Sprint(cfg.Hosts), "--join", cfg.hostIP(0) + ":7946",
		"--cloud", "auto", "--data-dir", filepath.Join(h.Dir(), "data"),
		"--tls-dir", filepath.Join(cfg.Dir, "tls", h.Name)}
	args = append(args, cfg.AgentArgs...)
	// nsenter enters only the network namespace and then execs the agent,
	// so the process's PID is the agent's.
	cmd := h.NS.Command(cfg.Bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = h.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("cluster: starting %s: %w", h.Name, err)
	}
	done := make(chan struct{})
	h.cmd, h.done, h.paused = cmd, done, false
	go func() { // owned by the process: ends when it exits
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	h.c.log.Info("agent started", "host", h.Name, "pid", cmd.Process.Pid)
	return nil
}

// Kill is the host dying with its workloads: SIGKILL to every process in
// its namespace, and a wait (at most 10 s) until the agent is reaped.
func (h *Host) Kill() error {
	n := len(netns.KillAll(h.NS.Path()))
	h.mu.Lock()
	done := h.done
	h.paused = false
	h.mu.Unlock()
	h.c.log.Info("host killed", "host", h.Name, "processes", n)
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("cluster: %s: the agent was not reaped 10 s after SIGKILL", h.Name)
	}
}

// Restart starts the agent again with the same data dir (after Kill) and
// waits until its admin API answers, or ctx ends. Whatever else is left in
// the namespace is killed first.
func (h *Host) Restart(ctx context.Context) error {
	if h.Running() {
		return fmt.Errorf("cluster: %s: Restart while the agent runs: Kill it first", h.Name)
	}
	netns.KillAll(h.NS.Path())
	if err := h.start(); err != nil {
		return err
	}
	_, err := h.waitStatus(ctx, func(api.Status) bool { return true })
	return err
}

// Pause stops the agent process (SIGSTOP) and nothing else: its workloads
// keep running, as when the agent hangs.
func (h *Host) Pause() error { return h.signal(syscall.SIGSTOP, true) }

// Resume continues a paused agent (SIGCONT).
func (h *Host) Resume() error { return h.signal(syscall.SIGCONT, false) }

func (h *Host) signal(sig syscall.Signal, paused bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.runningLocked() {
		return fmt.Errorf("cluster: %s: %w", h.Name, ErrNotRunning)
	}
	if err := h.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("cluster: %s: %v: %w", h.Name, sig, err)
	}
	h.paused = paused
	return nil
}

// ErrNotRunning is returned when a host's agent is not running.
var ErrNotRunning = errors.New("the agent is not running")

// Connect opens a TCP connection from inside the host's namespace to addr
// (host:port) and closes it: nil if the handshake completed within
// timeout.
func (h *Host) Connect(addr string, timeout time.Duration) error {
	return h.NS.Do(func() error {
		conn, err := net.DialTimeout("tcp4", addr, timeout)
		if err != nil {
			return err
		}
		return conn.Close()
	})
}

// ListenUDP opens a UDP socket inside the host's namespace on addr.
func (h *Host) ListenUDP(addr string) (*net.UDPConn, error) {
	var conn *net.UDPConn
	err := h.NS.Do(func() error {
		ua, err := net.ResolveUDPAddr("udp4", addr)
		if err != nil {
			return err
		}
		conn, err = net.ListenUDP("udp4", ua)
		return err
	})
	return conn, err
}

// Status is the agent's GET /v1/status, with timeout.
func (h *Host) Status(ctx context.Context, timeout time.Duration) (api.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return h.Client().Status(ctx)
}

// waitStatus polls the agent's status every 200 ms until ok accepts one
// or ctx ends.
func (h *Host) waitStatus(ctx context.Context, ok func(api.Status) bool) (api.Status, error) {
	var last api.Status
	var lastErr error
	for {
		st, err := h.Status(ctx, 2*time.Second)
		if err == nil {
			last = st
			if ok(st) {
				return st, nil
			}
		}
		lastErr = err
		if !h.Running() {
			return last, fmt.Errorf("cluster: %s: the agent exited (see %s): %s", h.Name, h.LogPath(), lastLines(h.LogPath(), 3))
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("cluster: waiting on %s: %w (last error: %v; last status: %s)", h.Name, ctx.Err(), lastErr, Summary(last))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Summary is a one-line view of a status, for errors and logs.
func Summary(st api.Status) string {
	parts := make([]string, 0, len(st.Members))
	for _, m := range st.Members {
		parts = append(parts, fmt.Sprintf("%s=%s/%s/%s", m.Name, m.State, m.Role, m.Zone))
	}
	return fmt.Sprintf("node=%q leader=%q [%s]", st.Node, st.Leader, strings.Join(parts, " "))
}

// lastLines is the last n lines of the file at path, for an error.
func lastLines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}
