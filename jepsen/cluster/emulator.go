package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// NoticePreempt is the kind of notice a spot host gets: the value
// `lifeboat emulate`'s POST /lifeboat/notice takes for a spot
// interruption (AWS spot/instance-action, GCP preempted, Azure Preempt).
const NoticePreempt = "preempt"

// Emulator is a host's metadata service: `lifeboat emulate CLOUD` run by
// the harness in the root namespace, listening on the switch's root end,
// where the host's agent reaches it. Notices are given and taken back
// through the emulator's HTTP control endpoints (/lifeboat/...). Its
// methods are safe for concurrent use.
type Emulator struct {
	// Env is the environment line the emulator printed, which points the
	// agent (and the cloud's SDK) at it: GCE_METADATA_HOST=IP:PORT, …
	Env string
	// Base is the emulator's base URL, http://IP:PORT, for the control
	// endpoints.
	Base string

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has been reaped
	http *http.Client
	stop sync.Once // Close
	err  error     // Close's result
}

// emulatorStartTimeout bounds the wait for the emulator's first line.
const emulatorStartTimeout = 20 * time.Second

// startEmulator runs `bin emulate args... --listen listen`, its output
// appended to logPath, and returns once it printed its environment line.
// The process dies with the harness (Pdeathsig); Close ends it.
func startEmulator(bin string, args []string, listen, logPath string) (*Emulator, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	first := newFirstLine(logf)
	cmd := exec.Command(bin, append(append([]string{"emulate"}, args...), "--listen", listen)...)
	cmd.Stdout, cmd.Stderr = first, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("cluster: starting the emulator: %w", err)
	}
	e := &Emulator{cmd: cmd, done: make(chan struct{}), http: &http.Client{Timeout: 10 * time.Second}}
	go func() { // owned by the process: ends when it exits
		_ = cmd.Wait()
		logf.Close()
		close(e.done)
	}()
	select {
	case e.Env = <-first.line:
	case <-e.done:
		return nil, fmt.Errorf("cluster: the emulator exited before it served (see %s)", logPath)
	case <-time.After(emulatorStartTimeout):
		return nil, errors.Join(fmt.Errorf("cluster: the emulator printed nothing in %v (see %s)", emulatorStartTimeout, logPath), e.Close())
	}
	if e.Base, err = controlBase(e.Env); err != nil {
		return nil, errors.Join(err, e.Close())
	}
	return e, nil
}

// controlBase is the http://HOST:PORT an environment line points at:
// AWS_EC2_METADATA_SERVICE_ENDPOINT=http://IP:PORT/,
// GCE_METADATA_HOST=IP:PORT, LIFEBOAT_AZURE_METADATA_ENDPOINT=http://IP:PORT.
func controlBase(envLine string) (string, error) {
	_, v, ok := strings.Cut(envLine, "=")
	if !strings.Contains(v, "://") {
		v = "http://" + v
	}
	u, err := url.Parse(v)
	if !ok || err != nil || u.Scheme != "http" || u.Port() == "" {
		return "", fmt.Errorf("cluster: the emulator's environment line %q names no http://HOST:PORT", envLine)
	}
	return "http://" + u.Host, nil
}

// Pid is the emulator's process id.
func (e *Emulator) Pid() int { return e.cmd.Process.Pid }

// Running reports whether the emulator's process has not yet been
// reaped.
func (e *Emulator) Running() bool {
	select {
	case <-e.done:
		return false
	default:
		return true
	}
}

// Notice makes a notice of kind appear now, with the instance ending at
// deadline (POST /lifeboat/notice).
func (e *Emulator) Notice(ctx context.Context, kind string, deadline time.Time) error {
	in := time.Until(deadline)
	if in <= 0 {
		return fmt.Errorf("cluster: notice deadline %s has passed", deadline.Format(time.RFC3339Nano))
	}
	body, err := json.Marshal(map[string]string{"kind": kind, "deadline_in": in.String()})
	if err != nil {
		return err
	}
	return e.do(ctx, http.MethodPost, "/lifeboat/notice", body, http.StatusOK, nil)
}

// Reset drops every notice (POST /lifeboat/reset): the host's metadata is
// as at boot.
func (e *Emulator) Reset(ctx context.Context) error {
	return e.do(ctx, http.MethodPost, "/lifeboat/reset", nil, http.StatusNoContent, nil)
}

// EmulatorNotice is one notice in GET /lifeboat/state.
type EmulatorNotice struct {
	Kind     string    `json:"kind"`
	Deadline time.Time `json:"deadline"`
	Active   bool      `json:"active"`
}

// EmulatorState is the part of GET /lifeboat/state the harness reads.
type EmulatorState struct {
	Cloud   string           `json:"cloud"`
	Zone    string           `json:"zone"`
	Notices []EmulatorNotice `json:"notices"`
}

// State is the emulator's GET /lifeboat/state.
func (e *Emulator) State(ctx context.Context) (EmulatorState, error) {
	var st EmulatorState
	err := e.do(ctx, http.MethodGet, "/lifeboat/state", nil, http.StatusOK, &st)
	return st, err
}

// do sends one control request and wants status; out, if not nil,
// receives the JSON answer.
func (e *Emulator) do(ctx context.Context, method, path string, body []byte, status int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, e.Base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.http.Do(req)
	if err != nil {
		return fmt.Errorf("cluster: emulator %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("cluster: emulator %s %s: %w", method, path, err)
	}
	if resp.StatusCode != status {
		return fmt.Errorf("cluster: emulator %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("cluster: emulator %s %s: %w", method, path, err)
	}
	return nil
}

// emulatorStopTimeout is how long Close waits after SIGTERM, and then
// after SIGKILL.
const emulatorStopTimeout = 10 * time.Second

// Close ends the emulator: SIGTERM, then SIGKILL if it has not exited
// within emulatorStopTimeout; it returns once the process is reaped. It is
// idempotent and returns the first call's result.
func (e *Emulator) Close() error {
	e.stop.Do(func() {
		_ = e.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-e.done:
			return
		case <-time.After(emulatorStopTimeout):
		}
		_ = e.cmd.Process.Kill()
		select {
		case <-e.done:
			e.err = fmt.Errorf("cluster: the emulator (pid %d) ignored SIGTERM and was killed", e.Pid())
		case <-time.After(emulatorStopTimeout):
			e.err = fmt.Errorf("cluster: the emulator (pid %d) was not reaped after SIGKILL", e.Pid())
		}
	})
	return e.err
}

// firstLine passes everything to w and hands the first line, without
// its newline, to line once.
type firstLine struct {
	w    io.Writer
	line chan string // buffered: the first line, sent once

	mu   sync.Mutex // guards buf and sent
	buf  []byte
	sent bool
}

func newFirstLine(w io.Writer) *firstLine { return &firstLine{w: w, line: make(chan string, 1)} }

func (f *firstLine) Write(p []byte) (int, error) {
	f.mu.Lock()
	if !f.sent {
		f.buf = append(f.buf, p...)
		if i := bytes.IndexByte(f.buf, '\n'); i >= 0 {
			f.line <- strings.TrimSpace(string(f.buf[:i]))
			f.sent, f.buf = true, nil
		}
	}
	f.mu.Unlock()
	return f.w.Write(p)
}
