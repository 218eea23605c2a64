package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/lifeboat/lifeboat/internal/monotime"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/node/runtime"
	"github.com/lifeboat/lifeboat/transfer"
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("invalid configuration")

// ErrNoTLS means the configuration carries no certificate; it wraps
// ErrConfig.
var ErrNoTLS = fmt.Errorf("%w: tls-dir: no certificate", ErrConfig)

// Config is everything one peer needs. The CLI fills it from flags, the
// environment and the config file; tests start from DefaultTestConfig.
type Config struct {
	Name            string
	DataDir         string
	BindAddr        string
	AdvertiseAddr   string
	Join            []string
	BootstrapExpect int
	Voters          int
	Spares          int

	Cloud        string // aws | gcp | azure | "" (none)
	Region       string
	Zone         string
	InstanceID   string
	InstanceType string
	Lifecycle    string // spot | on-demand | ""
	Capacity     fsm.Resources

	GossipPort   int
	RaftPort     int
	TransferPort int
	HTTPPort     int
	IngressPort  int

	// GossipKeys encrypt gossip; the first is primary. They seed the
	// keyring the node keeps in DATA_DIR/gossip.keyring: once that file
	// exists (rotations through the API update it) it wins, unless
	// GossipKeysOverride. Empty with no kept keyring: refused on the real
	// network (ErrNoGossipKey); no encryption on the in-memory one.
	GossipKeys [][]byte
	// GossipKeysOverride makes GossipKeys replace the kept keyring (the
	// agent's --gossip-key: the operator's explicit word, for a rotation
	// by restarts) instead of only seeding it.
	GossipKeysOverride bool
	// APIToken grants read and write on the admin API; APIReadToken grants
	// read only. With neither, only client certificates do: the API is
	// never open.
	APIToken     string
	APIReadToken string

	// TransferNetwork is how this node ships checkpoints: transfer.NetworkQUIC
	// or transfer.NetworkTCP (the same protocol over mutual TLS on TCP).
	// Every peer serves both on the transfer port.
	TransferNetwork string

	// TLS is this node's certificate (role peer, naming Name) and the
	// cluster CA: mutual TLS on the Raft port (Raft and the peer
	// endpoints) and the checkpoint transfer, and the admin API's HTTPS.
	// Required.
	TLS *transfer.Identity
	// CAFile is the path of the cluster CA's certificate, which workloads
	// are told (LIFEBOAT_CA_FILE) to verify the admin API with.
	CAFile string
	// InsecureAPI serves the admin API as plain HTTP. Only with a
	// loopback bind address, for experiments.
	InsecureAPI bool

	// LeaseTTL is a node lease's lifetime; it is renewed every LeaseTTL/3.
	LeaseTTL time.Duration
	// DriftBound is ρ, the bound on clock-rate drift between peers.
	DriftBound float64
	// LockDelay is added before a lost holder's workloads are re-granted.
	LockDelay time.Duration
	// Unsafe holds the switches of the Jepsen harness. Never in
	// production.
	Unsafe UnsafeConfig
	// KeeperCommand starts the fence keeper (node/keeper), which freezes
	// the workloads when the lease runs out while this agent is stopped;
	// "--state PATH" is appended. The agent sets it to its own binary's
	// hidden `fence-keeper` command; empty runs no keeper.
	KeeperCommand []string
	// WorkloadInit is the tiny init (lifeboat-init) shell workloads run
	// under as PID 1 of their PID namespace, so that a stop's SIGTERM
	// reaches them (node/runtime/init.go): an absolute path, the same on
	// every peer. The agent sets it to lifeboat-init beside its own binary;
	// empty runs shells as PID 1 themselves.
	WorkloadInit string

	// Raft tunes Raft's timings; Gossip tunes failure detection.
	Raft   RaftTimings
	Gossip GossipTimings

	// AutopilotInterval is how often the leader reconciles the server set.
	AutopilotInterval time.Duration
	// BootstrapSettle is how long the view of peers must stay unchanged
	// before the lowest-named peer bootstraps.
	BootstrapSettle time.Duration
	// ForwardTimeout bounds one write forwarded to the leader.
	ForwardTimeout time.Duration
	// Evacuation paces and sizes the moves the leader starts off doomed
	// and draining nodes.
	Evacuation EvacuationConfig
	// CheckpointGCGrace is how old a checkpoint nobody needs must be
	// before this node deletes it.
	CheckpointGCGrace time.Duration

	// Watcher reports this host's termination notices (cloud.NewWatcher);
	// nil: none (no cloud, or a test).
	Watcher NoticeWatcher

	// Checkpointers run workloads in their modes; nil means app and none
	// (the CLI adds criu when `lifeboat doctor` would say it works).
	Checkpointers []runtime.Checkpointer

	Logger *slog.Logger
	// Now is the wall clock: times recorded in Raft and shown, the clouds'
	// deadlines; nil means time.Now. Nothing that keeps the fence safe
	// reads it (clock.go).
	Now func() time.Time
	// Mono is the boot-time clock leases and fences are measured on; nil
	// means monotime.Now. Every process of the host must read the same
	// clock (the fence keeper reads monotime.Now).
	Mono func() monotime.Instant
	// Net replaces the real transports (Raft, gossip, peer RPC) with an
	// in-memory twin (node/internal/memnet); nil means real sockets.
	Net Network
}

// Network replaces the real transports of a peer with an in-memory twin,
// for tests that run many peers in one process. Node calls it from Start
// and Close only.
type Network interface {
	// RaftTransport registers and returns the Raft transport of addr.
	RaftTransport(addr string) raft.Transport
	// RaftStores returns the node's Raft stores, kept across restarts.
	RaftStores(name string) (raft.LogStore, raft.StableStore, raft.SnapshotStore)
	// GossipTransport registers and returns the gossip transport of addr.
	GossipTransport(addr string) memberlist.NodeAwareTransport
	// ServeHTTP registers the admin API handler of addr.
	ServeHTTP(addr string, h http.Handler)
	// RoundTripper carries peer calls sent from host from by node name,
	// which the receiving endpoints see as the caller (peer.Caller); an
	// unreachable peer fails as a dial does (*net.OpError with Op "dial").
	RoundTripper(from, name string) http.RoundTripper
	// HostDown marks the host at ip gone.
	HostDown(ip string)
}

// DefaultConfig returns the production defaults of the DESIGN.
func DefaultConfig() Config {
	return Config{
		DataDir:         "/var/lib/lifeboat",
		BindAddr:        "0.0.0.0",
		Voters:          3,
		Spares:          2,
		GossipPort:      7946,
		RaftPort:        7947,
		TransferPort:    7948,
		HTTPPort:        7949,
		IngressPort:     7950,
		TransferNetwork: transfer.NetworkQUIC,
		LeaseTTL:        6 * time.Second,
		DriftBound:      0.05,
		LockDelay:       2 * time.Second,
		Raft: RaftTimings{Heartbeat: 300 * time.Millisecond, Election: 300 * time.Millisecond,
			LeaderLease: 150 * time.Millisecond, CommitTimeout: 2 * time.Millisecond},
		AutopilotInterval: 250 * time.Millisecond,
		BootstrapSettle:   time.Second,
		ForwardTimeout:    5 * time.Second,
		CheckpointGCGrace: time.Minute,
		Evacuation: EvacuationConfig{Rate: 8, Burst: 4, Inflight: 4, Throughput: 100e6,
			Overhead: 500 * time.Millisecond},
	}
}

// DefaultTestConfig returns short timings for in-process tests.
func DefaultTestConfig(name string) Config {
	c := DefaultConfig()
	c.Name = name
	c.LeaseTTL = 1500 * time.Millisecond
	c.LockDelay = 200 * time.Millisecond
	c.Raft = RaftTimings{Heartbeat: 100 * time.Millisecond, Election: 100 * time.Millisecond,
		LeaderLease: 50 * time.Millisecond, CommitTimeout: c.Raft.CommitTimeout}
	c.AutopilotInterval = 50 * time.Millisecond
	c.BootstrapSettle = 200 * time.Millisecond
	c.ForwardTimeout = 2 * time.Second
	return c
}

// Validate reports the first bad setting, naming it.
func (c Config) Validate() error {
	checks := []struct {
		bad bool
		msg string
	}{
		{c.Name == "", "name: must not be empty"},
		{len(c.Name) > 63, "name: at most 63 characters"},
		{c.DataDir == "", "data-dir: must not be empty"},
		{net.ParseIP(c.BindAddr) == nil, fmt.Sprintf("bind: %q is not an IP address", c.BindAddr)},
		{c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil, fmt.Sprintf("advertise: %q is not an IP address", c.AdvertiseAddr)},
		{c.BootstrapExpect < 0, "bootstrap-expect: must be ≥ 0"},
		{c.Voters != 3 && c.Voters != 5 && c.Voters != 1, fmt.Sprintf("voters: %d: must be 3 or 5 (1 for a single-host trial)", c.Voters)},
		{c.Spares < 0 || c.Spares > 16, "spares: must be between 0 and 16"},
		{!oneOf(c.Cloud, "", "aws", "gcp", "azure"), fmt.Sprintf("cloud: %q: must be aws, gcp, azure or none", c.Cloud)},
		{!oneOf(c.TransferNetwork, transfer.NetworkQUIC, transfer.NetworkTCP), fmt.Sprintf("transfer-network: %q: must be quic or tcp", c.TransferNetwork)},
		{!oneOf(c.Lifecycle, "", "spot", "on-demand"), fmt.Sprintf("lifecycle: %q: must be spot or on-demand", c.Lifecycle)},
		{c.LeaseTTL < 300*time.Millisecond, "lease-ttl: must be at least 300ms"},
		{c.DriftBound < 0 || c.DriftBound >= 1, "drift-bound: must be in [0, 1)"},
		{c.LockDelay < 0, "lock-delay: must be ≥ 0"},
		{c.AutopilotInterval <= 0 || c.BootstrapSettle < 0 || c.ForwardTimeout <= 0, "autopilot, bootstrap and forward timings: must be > 0"},
		{c.CheckpointGCGrace < 0, "checkpoint gc grace: must be ≥ 0"},
		{c.InsecureAPI && !loopback(c.BindAddr), fmt.Sprintf("insecure-api: plain HTTP is allowed only on a loopback bind address, not %q", c.BindAddr)},
		{c.WorkloadInit != "" && !filepath.IsAbs(c.WorkloadInit), fmt.Sprintf("workload-init: %q must be an absolute path", c.WorkloadInit)},
	}
	for _, ch := range checks {
		if ch.bad {
			return fmt.Errorf("%w: %s", ErrConfig, ch.msg)
		}
	}
	for _, v := range []interface{ Validate() error }{c.Raft, c.Gossip, c.Evacuation} {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	if err := c.validatePorts(); err != nil {
		return err
	}
	return c.validateTLS()
}

// validateTLS checks that the certificate is a peer's and names this node.
func (c Config) validateTLS() error {
	switch {
	case c.TLS == nil:
		return fmt.Errorf("%w; make one with `lifeboat ca init` and `lifeboat ca issue %s`", ErrNoTLS, c.Name)
	case c.TLS.Role != transfer.RolePeer:
		return fmt.Errorf("%w: tls-dir: the certificate is for role %s; an agent needs role %s", ErrConfig, c.TLS.Role, transfer.RolePeer)
	case c.TLS.Name != c.Name:
		return fmt.Errorf("%w: tls-dir: the certificate names %s, but this node is %s", ErrConfig, c.TLS.Name, c.Name)
	}
	return nil
}

func (c Config) validatePorts() error {
	ports := map[string]int{"gossip-port": c.GossipPort, "raft-port": c.RaftPort,
		"transfer-port": c.TransferPort, "http-port": c.HTTPPort, "ingress-port": c.IngressPort}
	seen := map[int]string{}
	for _, name := range []string{"gossip-port", "raft-port", "transfer-port", "http-port", "ingress-port"} {
		p := ports[name]
		if p < 1 || p > 65535 {
			return fmt.Errorf("%w: %s: %d is not a port (1-65535)", ErrConfig, name, p)
		}
		if other, dup := seen[p]; dup && c.Net == nil {
			return fmt.Errorf("%w: %s and %s are both %d", ErrConfig, other, name, p)
		}
		seen[p] = name
	}
	for i, k := range c.GossipKeys {
		if n := len(k); n != 16 && n != 24 && n != 32 {
			return fmt.Errorf("%w: gossip-key %d: %d bytes, want 16, 24 or 32", ErrConfig, i, n)
		}
	}
	return nil
}

// loopback reports whether ip is a loopback address.
func loopback(ip string) bool {
	p := net.ParseIP(ip)
	return p != nil && p.IsLoopback()
}

func oneOf(s string, options ...string) bool {
	for _, o := range options {
		if s == o {
			return true
		}
	}
	return false
}

// advertise returns the address peers use to reach this node.
func (c Config) advertise() string {
	if c.AdvertiseAddr != "" {
		return c.AdvertiseAddr
	}
	if ip := net.ParseIP(c.BindAddr); ip != nil && !ip.IsUnspecified() {
		return c.BindAddr
	}
	return firstNonLoopback()
}

// firstNonLoopback finds the host's first non-loopback IPv4 address, or
// 127.0.0.1 when it has none.
func firstNonLoopback() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "127.0.0.1"
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
	}
	return "127.0.0.1"
}

// RaftTimings tune Raft (see FINDINGS: 200/200/100 ms elects in ~0.4 s).
type RaftTimings struct {
	Heartbeat   time.Duration
	Election    time.Duration
	LeaderLease time.Duration
	// CommitTimeout is how long the leader waits, with nothing new to
	// replicate, before it tells the followers the commit index anyway
	// (hashicorp/raft waits up to twice this). A follower learns that a
	// Prepare or a grant committed only then, and a move waits for that
	// twice, so it is short: at 2 ms each follower gets an empty append
	// every 2–4 ms when the cluster is idle.
	CommitTimeout time.Duration
}

// Validate names the first bad timing.
func (t RaftTimings) Validate() error {
	switch {
	case t.Heartbeat <= 0 || t.Election <= 0 || t.LeaderLease <= 0 || t.CommitTimeout <= 0:
		return errors.New("raft timings: must be > 0")
	case t.LeaderLease > t.Heartbeat:
		return errors.New("raft leader lease: must not exceed the heartbeat timeout")
	}
	return nil
}

// GossipTimings tune failure detection; zero keeps the gossip package's
// defaults.
type GossipTimings struct {
	Probe         time.Duration
	ProbeTimeout  time.Duration
	Interval      time.Duration
	SuspicionMult int
}

// Validate refuses negative timings.
func (t GossipTimings) Validate() error {
	if t.Probe < 0 || t.ProbeTimeout < 0 || t.Interval < 0 || t.SuspicionMult < 0 {
		return errors.New("gossip timings: must be ≥ 0 (0: the default)")
	}
	return nil
}

// EvacuationConfig paces the moves the leader starts off doomed and
// draining nodes and sizes them for the deadline check.
type EvacuationConfig struct {
	// Rate and Burst are a token bucket of Rate moves per second and
	// Burst at once, each per target that can take work, so that the
	// pace matches what the targets absorb. Inflight caps the moves in
	// flight to one target.
	Rate     float64
	Burst    int
	Inflight int
	// Throughput (bytes/s) and Overhead estimate how long one move takes
	// (overhead + checkpoint bytes / throughput) for the deadline check,
	// until moves have measured the throughput.
	Throughput float64
	Overhead   time.Duration
}

// Validate names the first bad setting.
func (e EvacuationConfig) Validate() error {
	switch {
	case e.Rate <= 0 || e.Burst < 1 || e.Inflight < 1:
		return errors.New("evacuation rate, burst and in-flight moves: must be > 0")
	case e.Throughput <= 0 || e.Overhead < 0:
		return errors.New("evacuation throughput must be > 0 and overhead ≥ 0")
	}
	return nil
}

// UnsafeConfig holds the Jepsen harness's switches. Never in production.
type UnsafeConfig struct {
	// NoFencing switches fencing off, for the negative control only: a
	// holder whose lease runs out keeps its workloads running, and a lost
	// node's workloads are re-granted at once instead of after TTL·ρ +
	// LockDelay.
	NoFencing bool
	// CrashPoints lets DATA_DIR/crash-at kill the agent at a boundary of
	// the two-phase commit (crash.go).
	CrashPoints bool
	// ClockControl makes the wall clock a test clock that POST
	// /v1/internal/clock steps (clock.go). It replaces Now.
	ClockControl bool
}
