// Package cluster is the Jepsen harness's stand-in data centre: one
// network namespace per host on a switch (internal/netns), a metadata
// emulator per host (its cloud, its own zone: a `lifeboat emulate`
// process listening on the switch's root end), and a real lifeboat agent
// in every namespace. It drives the system only through the binary: its
// CLI (agent, emulate, ca) and its HTTP APIs.
//
// Only the namespaces Start creates and the switch's root address carry
// traffic. Close removes everything (processes, namespaces, switch,
// emulators); so does SIGINT or SIGTERM while a cluster is open, after
// which the signal is raised again. Start first removes what a crashed
// run with the same Prefix left behind; every process the harness starts
// dies with it (Pdeathsig).
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/lifeboat/lifeboat/internal/netns"
	"github.com/lifeboat/lifeboat/node/api"
)

// Cluster is the running hosts. Hosts is fixed after Start.
type Cluster struct {
	Hosts []*Host

	cfg Config
	log *slog.Logger
	sw  *netns.Switch
	// creds are the harness's certificates (set by build).
	creds *creds

	// mu guards Hosts and sw while Start builds, against a Close from
	// the signal watcher; and closed. After Start, Hosts does not change.
	mu     sync.Mutex
	closed bool

	sigStop chan struct{} // closed by Close: ends the signal watcher
	sigDone chan struct{} // closed when the watcher has ended
	once    sync.Once     // close
	stop    sync.Once     // closes sigStop
	err     error         // Close's result
}

// Start builds the cluster and waits (bounded by ctx) until every host
// reports one formed cluster: a leader and all hosts alive. On any error
// everything created so far is removed.
func Start(ctx context.Context, cfg Config) (_ *Cluster, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("cluster: network namespaces need root")
	}
	abs, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	cfg.Dir = abs
	c := &Cluster{cfg: cfg, log: cfg.Logger, sigStop: make(chan struct{}), sigDone: make(chan struct{})}
	c.watchSignals()
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Close())
		}
	}()
	if gone, err := cleanupStale(cfg.Prefix); err != nil {
		c.log.Warn("stale namespaces", "err", err)
	} else if len(gone) > 0 {
		c.log.Info("removed stale namespaces", "names", gone)
	}
	if err := c.buildAndStart(); err != nil {
		return nil, err
	}
	if err := c.WaitFormed(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// buildAndStart builds the hosts and starts their agents, holding mu.
func (c *Cluster) buildAndStart() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("cluster: closed while starting")
	}
	if err := c.build(); err != nil {
		return err
	}
	for _, h := range c.Hosts {
		if err := h.start(); err != nil {
			return err
		}
	}
	return nil
}

// build makes the switch, the namespaces, the emulators and the
// certificates.
func (c *Cluster) build() error {
	cfg := c.cfg
	sw, err := netns.NewSwitch(cfg.Prefix+"sw", cfg.rootIP(), 24)
	if err != nil {
		return err
	}
	c.sw = sw
	if err := initCA(cfg.Bin, c.caDir()); err != nil {
		return err
	}
	if c.creds, err = makeCreds(cfg.Bin, c.caDir(), cfg.Dir); err != nil {
		return err
	}
	for i := range cfg.Hosts {
		h, err := c.newHost(i)
		if h != nil {
			c.Hosts = append(c.Hosts, h)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// newHost creates host i; a non-nil host is returned for cleanup even
// with an error.
func (c *Cluster) newHost(i int) (*Host, error) {
	cfg := c.cfg
	name := fmt.Sprintf("h%d", i+1)
	ns, err := netns.New(cfg.Prefix + name)
	if err != nil {
		return nil, err
	}
	spec := cfg.emulatorSpec(i, name)
	h := &Host{Name: name, IP: cfg.hostIP(i), Zone: spec.Zone, Cloud: spec.Cloud, NS: ns, c: c}
	if err := c.sw.Plug(ns, h.IP); err != nil {
		return h, err
	}
	if err := os.MkdirAll(h.Dir(), 0o700); err != nil {
		return h, err
	}
	if h.Emu, err = startEmulator(cfg.Bin, spec.args(), cfg.rootIP()+":0", h.EmulatorLogPath()); err != nil {
		return h, fmt.Errorf("cluster: %s: %w", name, err)
	}
	c.log.Info("emulator started", "host", name, "pid", h.Emu.Pid(), "env", h.Emu.Env)
	h.env = append(agentEnviron(), h.Emu.Env)
	h.env = append(h.env, cfg.Env...)
	return h, issueCert(cfg.Bin, c.caDir(), name, h.IP, filepath.Join(cfg.Dir, "tls", name))
}

// caDir is the cluster's CA.
func (c *Cluster) caDir() string { return filepath.Join(c.cfg.Dir, "ca") }

// agentEnviron is the harness's environment without any cloud endpoint
// variable: each agent gets exactly its own emulator's.
func agentEnviron() []string {
	var out []string
	for _, kv := range os.Environ() {
		switch strings.SplitN(kv, "=", 2)[0] {
		case "AWS_EC2_METADATA_SERVICE_ENDPOINT", "GCE_METADATA_HOST", "LIFEBOAT_AZURE_METADATA_ENDPOINT":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// WaitFormed waits until every host's status shows a leader and all
// hosts alive, or ctx ends.
func (c *Cluster) WaitFormed(ctx context.Context) error {
	for _, h := range c.Hosts {
		if _, err := h.waitStatus(ctx, c.formed); err != nil {
			return err
		}
	}
	return nil
}

// formed: a leader, and every host a member and alive.
func (c *Cluster) formed(st api.Status) bool {
	if st.Leader == "" || len(st.Members) != len(c.Hosts) {
		return false
	}
	for _, m := range st.Members {
		if m.State != api.StateAlive {
			return false
		}
	}
	return true
}

// Host returns the host named name, nil if there is none.
func (c *Cluster) Host(name string) *Host {
	for _, h := range c.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Config is the configuration the cluster runs with.
func (c *Cluster) Config() Config { return c.cfg }

// RootIP is the harness's address on the switch.
func (c *Cluster) RootIP() string { return c.cfg.rootIP() }

// watchSignals cleans up on SIGINT or SIGTERM and raises the signal
// again, so that the process still ends as the signal says.
func (c *Cluster) watchSignals() {
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		defer close(c.sigDone)
		defer signal.Stop(sigc)
		select {
		case sig := <-sigc:
			c.log.Warn("signal: cleaning up", "signal", sig)
			_ = c.close()
			signal.Reset(sig)
			_ = syscall.Kill(os.Getpid(), sig.(syscall.Signal))
		case <-c.sigStop:
		}
	}()
}

// Close kills every process in the hosts' namespaces (agents and
// workloads alike), stops the emulators and deletes the namespaces and
// the switch. It is idempotent and returns the first call's result.
func (c *Cluster) Close() error {
	err := c.close()
	c.stop.Do(func() { close(c.sigStop) })
	<-c.sigDone
	return err
}

func (c *Cluster) close() error {
	c.once.Do(func() {
		c.mu.Lock() // waits for a build in progress
		defer c.mu.Unlock()
		c.closed = true
		var errs []error
		var wg sync.WaitGroup
		for _, h := range c.Hosts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := h.Kill(); err != nil {
					c.log.Warn("close", "host", h.Name, "err", err)
				}
			}()
		}
		wg.Wait()
		errs = append(errs, c.closeEmulators())
		for _, h := range c.Hosts {
			errs = append(errs, h.NS.Close())
		}
		if c.sw != nil {
			errs = append(errs, c.sw.Close())
		}
		c.err = errors.Join(errs...)
		c.log.Info("cluster closed", "err", c.err)
	})
	return c.err
}

// closeEmulators ends every host's emulator process, all at once.
func (c *Cluster) closeEmulators() error {
	errs := make([]error, len(c.Hosts))
	var wg sync.WaitGroup
	for i, h := range c.Hosts {
		if h.Emu == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = h.Emu.Close()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
