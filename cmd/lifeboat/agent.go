package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/gossip"
	"github.com/lifeboat/lifeboat/node"
	"github.com/lifeboat/lifeboat/node/cloud"
	"github.com/lifeboat/lifeboat/node/host"
	"github.com/lifeboat/lifeboat/node/runtime"
	"github.com/lifeboat/lifeboat/transfer"
)

// agentFlags are the agent's settings as typed; toConfig turns them into a
// node.Config.
type agentFlags struct {
	cfg        node.Config
	cloud      string
	gossipKeys []string
	criuPath   string
	tlsDir     string
	logLevel   string
	logFormat  string
	configFile string
}

func newAgentCmd() *cobra.Command {
	af := &agentFlags{cfg: node.DefaultConfig()}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a peer",
		Long: "Run a lifeboat peer. Every flag can also be set as LIFEBOAT_<FLAG_NAME> " +
			"(e.g. LIFEBOAT_DATA_DIR) or as a key of the YAML file given with --config; " +
			"the command line wins over the environment, which wins over the file.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applySources(cmd, os.Getenv); err != nil {
				return err
			}
			cfg, err := af.toConfig()
			if err != nil {
				return err
			}
			return runAgent(cmd, cfg)
		},
	}
	af.register(cmd)
	return cmd
}

func (af *agentFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	c := &af.cfg
	hostname, _ := os.Hostname()
	f.StringVar(&c.Name, "name", hostname, "node name")
	f.StringVar(&c.DataDir, "data-dir", c.DataDir, "Raft log, checkpoints, workload logs")
	f.StringVar(&c.BindAddr, "bind", c.BindAddr, "address of every listener")
	f.StringVar(&c.AdvertiseAddr, "advertise", "", "address peers use to reach this one (default: bind, or the first non-loopback)")
	f.StringSliceVar(&c.Join, "join", nil, "gossip address(es) of running peers, host[:port]")
	f.IntVar(&c.BootstrapExpect, "bootstrap-expect", 0, "wait for N peers before the first election (0: join an existing cluster)")
	f.IntVar(&c.Voters, "voters", c.Voters, "Raft voters kept by autopilot (3 or 5)")
	f.IntVar(&c.Spares, "spares", c.Spares, "Raft non-voters kept warm for promotion")
	f.StringVar(&af.cloud, "cloud", "auto", "where termination notices and identity come from: auto|aws|gcp|azure|none")
	f.StringVar(&c.Region, "region", "", "region (overrides the metadata service)")
	f.StringVar(&c.Zone, "zone", "", "zone (overrides the metadata service)")
	f.StringVar(&c.InstanceType, "instance-type", "", "instance type (overrides the metadata service)")
	f.StringVar(&c.InstanceID, "instance-id", "", "instance id (overrides the metadata service)")
	f.StringVar(&c.Lifecycle, "lifecycle", "", "spot or on-demand (overrides the metadata service)")
	f.IntVar(&c.GossipPort, "gossip-port", c.GossipPort, "gossip (memberlist) port, TCP and UDP")
	f.IntVar(&c.RaftPort, "raft-port", c.RaftPort, "Raft transport port")
	f.IntVar(&c.TransferPort, "transfer-port", c.TransferPort, "checkpoint transfer port: QUIC on UDP and mutual TLS on TCP")
	f.StringVar(&c.TransferNetwork, "transfer-network", c.TransferNetwork, "how this peer ships checkpoints: quic, or tcp (mutual TLS over TCP)")
	f.IntVar(&c.HTTPPort, "http-port", c.HTTPPort, "admin API port")
	f.IntVar(&c.IngressPort, "ingress-port", c.IngressPort, "ingress proxy port")
	f.StringSliceVar(&af.gossipKeys, "gossip-key", nil, "base64 gossip encryption key(s) of 16, 24 or 32 bytes; the first is used to send "+
		"(default: the keyring kept in DATA_DIR, else TLS_DIR/gossip.key from `lifeboat ca issue`; given, it replaces the kept keyring)")
	f.StringVar(&af.tlsDir, "tls-dir", "", "this node's certificate: ca.crt, node.crt, node.key and gossip.key from `lifeboat ca issue` (default DATA_DIR/tls)")
	f.StringVar(&c.APIToken, "api-token", "", "bearer token for read and write on the admin API (never accepted between peers)")
	f.BoolVar(&c.InsecureAPI, "insecure-api", false, "serve the admin API as plain HTTP; only with a loopback --bind, for experiments")
	f.StringVar(&c.APIReadToken, "api-read-token", "", "bearer token for read-only access to the admin API")
	f.Int64Var(&c.Capacity.MemoryMiB, "memory-mib", 0, "memory offered to workloads (default: the host's memory less 10 %)")
	f.Int64Var(&c.Capacity.CPUMillis, "cpu-millis", 0, "CPU offered to workloads in millicores (default: all cores)")
	f.DurationVar(&c.LeaseTTL, "lease-ttl", c.LeaseTTL, "node lease lifetime; renewed every TTL/3")
	f.BoolVar(&c.Unsafe.NoFencing, "unsafe-disable-fencing", false, "TESTS ONLY: switch fencing off (the Jepsen negative control)")
	_ = f.MarkHidden("unsafe-disable-fencing")
	f.BoolVar(&c.Unsafe.CrashPoints, "unsafe-crash-points", false, "TESTS ONLY: die where DATA_DIR/crash-at says (a two-phase-commit boundary)")
	_ = f.MarkHidden("unsafe-crash-points")
	f.BoolVar(&c.Unsafe.ClockControl, "unsafe-clock-control", false, "TESTS ONLY: a wall clock that POST /v1/internal/clock steps (the Jepsen clock-jump nemesis)")
	_ = f.MarkHidden("unsafe-clock-control")
	f.StringVar(&af.criuPath, "criu", host.FindCRIU(), "criu binary for the criu checkpoint mode (\"\": none; the mode is offered only when `lifeboat doctor` says it works)")
	f.StringVar(&c.WorkloadInit, "workload-init", findWorkloadInit(), "the tiny init shell workloads run under as PID 1 of their namespace, so that a stop's SIGTERM reaches them (\"\": none; default: lifeboat-init beside this binary)")
	f.StringVar(&af.logLevel, "log-level", "info", "debug|info|warn|error")
	f.StringVar(&af.logFormat, "log-format", "text", "text|json")
	f.StringVar(&af.configFile, "config", "", "YAML file with the same keys as these flags")
}

// toConfig finishes the node.Config: cloud, keys, capacity, logger.
func (af *agentFlags) toConfig() (node.Config, error) {
	c := af.cfg
	switch af.cloud {
	case "auto":
		c.Cloud = cloud.Detect(cloud.DMIDir, os.Getenv)
	case "none", "":
		c.Cloud = ""
	case "aws", "gcp", "azure":
		c.Cloud = af.cloud
	default:
		return c, fmt.Errorf("%w: --cloud %q: must be auto, aws, gcp, azure or none", errUsage, af.cloud)
	}
	for i, k := range af.gossipKeys {
		key, err := gossip.ParseKey(k)
		if err != nil {
			return c, fmt.Errorf("%w: --gossip-key %d: %v", errUsage, i+1, err)
		}
		c.GossipKeys = append(c.GossipKeys, key)
	}
	if self, err := os.Executable(); err == nil {
		c.KeeperCommand = []string{self, "fence-keeper"}
	}
	if c.Capacity.MemoryMiB == 0 {
		c.Capacity.MemoryMiB = hostMemoryMiB() * 9 / 10
	}
	if c.Capacity.CPUMillis == 0 {
		c.Capacity.CPUMillis = int64(goruntime.NumCPU()) * 1000
	}
	log, err := newLogger(af.logLevel, af.logFormat)
	if err != nil {
		return c, err
	}
	c.Logger = log
	if err := checkWorkloadInit(c.WorkloadInit, log); err != nil {
		return c, err
	}
	if err := af.watchCloud(&c, log); err != nil {
		return c, err
	}
	cks, err := af.checkpointers(log)
	if err != nil {
		return c, err
	}
	c.Checkpointers = cks
	tlsDir, tlsErr, err := af.loadTLS(&c)
	if err != nil {
		return c, err
	}
	if err := c.Validate(); err != nil {
		if tlsErr != nil && errors.Is(err, node.ErrNoTLS) {
			return c, fmt.Errorf("%w: --tls-dir: %v (make it with `lifeboat ca init --dir CA` and `lifeboat ca issue %s --ca CA --out %s`)", errUsage, tlsErr, c.Name, tlsDir)
		}
		return c, fmt.Errorf("%w: %v", errUsage, err)
	}
	return c, gossipKeyring(&c, tlsDir)
}

// loadTLS reads the node's certificate from --tls-dir (default
// DATA_DIR/tls) into c; a certificate that does not load is tlsErr, for
// the message of the refusal Validate then makes.
func (af *agentFlags) loadTLS(c *node.Config) (tlsDir string, tlsErr, err error) {
	tlsDir = af.tlsDir
	if tlsDir == "" {
		tlsDir = filepath.Join(c.DataDir, "tls")
	}
	c.TLS, tlsErr = transfer.LoadIdentity(tlsDir, time.Now())
	c.CAFile, err = filepath.Abs(filepath.Join(tlsDir, transfer.CACertFile))
	return tlsDir, tlsErr, err
}

// watchCloud starts listening to the cloud's metadata service (never on a
// host that is in no cloud: --cloud auto decides from DMI and the SDKs'
// endpoint variables) and fills the identity the flags left empty.
func (af *agentFlags) watchCloud(c *node.Config, log *slog.Logger) error {
	if c.Cloud == "" {
		return nil
	}
	wc := cloud.DefaultWatchConfig(c.Cloud)
	wc.Logger = log.With("part", "cloud")
	w, err := cloud.NewWatcher(wc)
	if err != nil {
		return fmt.Errorf("%w: --cloud %s: %v", errUsage, c.Cloud, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	id, err := w.Identity(ctx)
	if err != nil {
		return fmt.Errorf("--cloud %s: reading the instance identity: %w", c.Cloud, err)
	}
	fill := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	fill(&c.Region, id.Region)
	fill(&c.Zone, id.Zone)
	fill(&c.InstanceType, id.InstanceType)
	fill(&c.InstanceID, id.InstanceID)
	fill(&c.Lifecycle, id.Lifecycle)
	c.Watcher = w
	log.Info("watching the cloud's termination notices", "cloud", c.Cloud, "region", c.Region, "zone", c.Zone,
		"instance_type", c.InstanceType, "lifecycle", c.Lifecycle)
	return nil
}

// checkpointers offers the criu mode only where the host probe says it
// works (root, CRIU ≥ 4.2, criu check, PID namespaces); app and none always.
func (af *agentFlags) checkpointers(log *slog.Logger) ([]runtime.Checkpointer, error) {
	cks := []runtime.Checkpointer{runtime.NewApp(), runtime.None{}}
	if af.criuPath == "" {
		return cks, nil
	}
	hc := host.DefaultConfig()
	hc.CRIUPath = af.criuPath
	rep := host.Probe(context.Background(), hc)
	if !slices.Contains(rep.Modes, fsm.ModeCRIU) {
		for _, ch := range rep.Checks {
			if !ch.OK {
				log.Warn("criu checkpoint mode not offered", "check", ch.Name, "detail", ch.Detail)
			}
		}
		return cks, nil
	}
	cc := runtime.DefaultCRIUConfig()
	cc.Path, cc.Logger = af.criuPath, log.With("part", "criu")
	cc.LazyPages = rep.LazyPages
	criu, err := runtime.NewCRIU(cc)
	if err != nil {
		log.Warn("criu checkpoint mode not offered", "err", err)
		return cks, nil
	}
	return append([]runtime.Checkpointer{criu}, cks...), nil
}

// findWorkloadInit is lifeboat-init beside this binary (make build puts it
// there), or "" when there is none.
func findWorkloadInit() string {
	self, err := os.Executable()
	if err != nil {
		return ""
	}
	p := filepath.Join(filepath.Dir(self), "lifeboat-init")
	if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return ""
	}
	return p
}

// checkWorkloadInit refuses a --workload-init that is not an executable
// file, and says what running without one costs.
func checkWorkloadInit(path string, log *slog.Logger) error {
	if path == "" {
		log.Warn("no workload init (lifeboat-init, which make build puts beside lifeboat): shell workloads run as PID 1 of their namespace, which ignores SIGTERM, so stopping one waits the whole grace and kills it")
		return nil
	}
	fi, err := os.Stat(path)
	if err == nil && (!fi.Mode().IsRegular() || fi.Mode()&0o111 == 0) {
		err = errors.New("not an executable file")
	}
	if err != nil {
		return fmt.Errorf("%w: --workload-init %s: %v", errUsage, path, err)
	}
	return nil
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("%w: --log-format %q: want text or json", errUsage, format)
}

// hostMemoryMiB reads MemTotal from /proc/meminfo (0 when unknown).
func hostMemoryMiB() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			return kb / 1024
		}
	}
	return 0
}

// runAgent runs a peer until the command's context ends (SIGINT/SIGTERM).
func runAgent(cmd *cobra.Command, cfg node.Config) error {
	n, err := node.New(cfg)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := n.Start(); err != nil {
		return err
	}
	<-cmd.Context().Done()
	cfg.Logger.Info("signal received; stopping")
	done := make(chan error, 1)
	go func() { done <- n.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		return fmt.Errorf("the peer did not stop within 10s")
	}
}
