package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/lifeboat/lifeboat/node/api"
	"github.com/lifeboat/lifeboat/transfer"
)

// localAgent is one agent process of a local cluster on loopback.
type localAgent struct {
	Name string
	IP   string // a 127.0.0.x address: every agent has its own
	Zone string
	Args []string // extra flags
	// Env is added to the agent's environment.
	Env []string
	// Wrap, if set, builds the agent's command (to run it inside a network
	// namespace, say); nil runs the binary directly.
	Wrap func(bin string, args ...string) *exec.Cmd

	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// URL is the agent's admin API.
func (a *localAgent) URL() string { return "https://" + a.IP + ":7949" }

// localCluster runs agents of one binary as child processes, each on its
// own loopback address with the default ports, its data dir and log file
// under dir. The demo and the process-level tests use it.
//
// Its agents have certificates of the CA in caDir (default dir/ca, made on
// first use) that name their addresses, and the API token of the
// environment (LIFEBOAT_API_TOKEN, which the agent reads as --api-token
// and the CLI as --token); useCredentials sets both up.
type localCluster struct {
	bin    string
	dir    string
	caDir  string
	agents []*localAgent
}

// ca is the cluster's CA directory.
func (lc *localCluster) ca() string {
	if lc.caDir != "" {
		return lc.caDir
	}
	return filepath.Join(lc.dir, "ca")
}

// useCredentials makes the CA (if missing) and puts the credentials the
// agents and every client of this process use into its environment:
// LIFEBOAT_CA_FILE and, unless set already, a fresh LIFEBOAT_API_TOKEN.
func (lc *localCluster) useCredentials() error {
	if _, err := lc.loadCA(); err != nil {
		return err
	}
	if err := os.Setenv("LIFEBOAT_CA_FILE", filepath.Join(lc.ca(), transfer.CACertFile)); err != nil {
		return err
	}
	if os.Getenv("LIFEBOAT_API_TOKEN") != "" {
		return nil
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	return os.Setenv("LIFEBOAT_API_TOKEN", base64.RawURLEncoding.EncodeToString(b))
}

// loadCA loads the cluster's CA, making it on first use.
func (lc *localCluster) loadCA() (*transfer.CA, error) {
	ca, err := transfer.LoadCA(lc.ca())
	if err == nil {
		return ca, nil
	}
	if ca, err = transfer.NewCA("local", time.Now()); err != nil {
		return nil, err
	}
	if err := ca.Save(lc.ca()); err != nil {
		// Another cluster of this process made it meanwhile.
		return transfer.LoadCA(lc.ca())
	}
	return ca, nil
}

// start launches an agent (again, after a stop: the data dir is kept).
func (lc *localCluster) start(a *localAgent, join string) error {
	a.dir = filepath.Join(lc.dir, a.Name)
	if err := os.MkdirAll(a.dir, 0o700); err != nil {
		return err
	}
	if err := lc.useCredentials(); err != nil {
		return err
	}
	if err := lc.ensureCert(a); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(a.dir, "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	args := []string{"agent", "--name", a.Name, "--bind", a.IP, "--data-dir", filepath.Join(a.dir, "data"), "--join", join}
	if a.Zone != "" { // a local zone and no cloud; without one the cloud's metadata says
		args = append(args, "--zone", a.Zone, "--region", "local", "--cloud", "none")
	}
	args = append(args, a.Args...)
	cmd := exec.Command(lc.bin, args...)
	if a.Wrap != nil {
		cmd = a.Wrap(lc.bin, args...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), a.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s: %w", a.Name, err)
	}
	a.cmd, a.done = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(a.done)
	}()
	if !containsAgent(lc.agents, a) {
		lc.agents = append(lc.agents, a)
	}
	return nil
}

// ensureCert gives the agent a certificate of the cluster's CA naming its
// IP in its default --tls-dir, DATA_DIR/tls.
func (lc *localCluster) ensureCert(a *localAgent) error {
	tlsDir := filepath.Join(a.dir, "data", "tls")
	if _, err := os.Stat(filepath.Join(tlsDir, transfer.NodeCertFile)); err == nil {
		return nil
	}
	ca, err := lc.loadCA()
	if err != nil {
		return err
	}
	san := transfer.SANs{IPs: []net.IP{net.ParseIP(a.IP)}}
	id, err := ca.IssueSANs(a.Name, transfer.RolePeer, san, time.Now())
	if err != nil {
		return err
	}
	if err := id.Save(tlsDir); err != nil {
		return err
	}
	return ensureGossipKey(lc.ca(), tlsDir)
}

// issueClient issues an operator's certificate (role client) of the
// cluster's CA into dir/NAME and returns that directory.
func (lc *localCluster) issueClient(name string) (string, error) {
	ca, err := lc.loadCA()
	if err != nil {
		return "", err
	}
	id, err := ca.Issue(name, transfer.RoleClient, time.Now())
	if err != nil {
		return "", err
	}
	out := filepath.Join(lc.dir, name)
	return out, id.Save(out)
}

func containsAgent(list []*localAgent, a *localAgent) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

// running reports whether the agent's process is alive.
func (a *localAgent) running() bool {
	if a.done == nil {
		return false
	}
	select {
	case <-a.done:
		return false
	default:
		return true
	}
}

// signal sends sig and, for SIGTERM, waits up to grace before SIGKILL.
func (a *localAgent) signal(sig syscall.Signal, grace time.Duration) error {
	if !a.running() {
		return nil
	}
	if err := a.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-a.done:
		return nil
	case <-time.After(grace):
	}
	_ = a.cmd.Process.Kill()
	<-a.done
	if sig == syscall.SIGKILL {
		return nil
	}
	return fmt.Errorf("%s did not stop within %s and was killed", a.Name, grace)
}

// stopAll stops every agent with SIGTERM (SIGKILL after 10 s).
func (lc *localCluster) stopAll() error {
	var errs []error
	for _, a := range lc.agents {
		errs = append(errs, a.signal(syscall.SIGTERM, 10*time.Second))
	}
	return errors.Join(errs...)
}

// waitStatus polls url's /v1/status until ok accepts it or ctx ends; the
// error then tells the last status seen.
func waitStatus(ctx context.Context, url string, ok func(api.Status) bool) (api.Status, error) {
	c, err := credentialsFromEnv().client(url)
	if err != nil {
		return api.Status{}, err
	}
	var last api.Status
	var lastErr error
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := c.Status(cctx)
		cancel()
		if err == nil {
			last = st
			if ok(st) {
				return st, nil
			}
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("waiting on %s: %w (last error: %v; last status: %s)", url, ctx.Err(), lastErr, summary(last))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// summary is a one-line view of a status for error messages.
func summary(st api.Status) string {
	parts := make([]string, 0, len(st.Members))
	for _, m := range st.Members {
		parts = append(parts, fmt.Sprintf("%s=%s/%s/%s", m.Name, m.State, m.Role, m.Zone))
	}
	return fmt.Sprintf("leader=%q [%s]", st.Leader, strings.Join(parts, " "))
}
