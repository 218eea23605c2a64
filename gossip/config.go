package gossip

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

var (
	// ErrInvalidConfig is wrapped by every error of Config.Validate.
	ErrInvalidConfig = errors.New("gossip: invalid config")
	// ErrInvalidKey is wrapped by errors about a gossip encryption key.
	ErrInvalidKey = errors.New("gossip: invalid key")
)

// DefaultPort is the gossip port of the stable CLI surface (--gossip-port).
const DefaultPort = 7946

// Config configures a Gossip. Build it from DefaultConfig and set Name.
type Config struct {
	// Name identifies this node in the cluster; it must be unique.
	Name string
	// BindAddr is the IP the TCP and UDP listeners bind to.
	BindAddr string
	// BindPort is the TCP and UDP port. 0 lets the kernel pick one (memberlist
	// retries until one port is free for both); LocalAddr reports it.
	BindPort int
	// AdvertiseAddr is the IP peers use to reach this node; "" = derived
	// from BindAddr (the first private address when binding to 0.0.0.0).
	AdvertiseAddr string
	// AdvertisePort is the port peers use; 0 = the bound port.
	AdvertisePort int

	// Keys are the gossip encryption keys (16, 24 or 32 bytes each, AES-128/
	// 192/256); the first is primary, used to encrypt. Empty = no encryption,
	// and then encryption cannot be enabled later without a restart.
	Keys [][]byte

	// ProbeInterval is the time between failure-detector probes.
	ProbeInterval time.Duration
	// ProbeTimeout is how long a probe waits for an ack before trying
	// indirect probes; it must be shorter than ProbeInterval.
	ProbeTimeout time.Duration
	// SuspicionMult scales how long a suspect has to refute before it is
	// declared dead: SuspicionMult × max(1, log10 N) × ProbeInterval.
	SuspicionMult int
	// GossipInterval is the time between gossip rounds (broadcasts of
	// state changes and metadata).
	GossipInterval time.Duration
	// PushPullInterval is the time between full state syncs with a random
	// peer (memberlist scales it up for clusters of more than 32 nodes).
	PushPullInterval time.Duration
	// RetransmitMult scales how many times a broadcast is retransmitted:
	// RetransmitMult × ceil(log10(N+1)).
	RetransmitMult int

	// Logger receives this package's logs and memberlist's; nil = discard.
	Logger *slog.Logger

	// Transport, when set, replaces the network (BindAddr and BindPort are
	// then unused): in tests, the in-memory twin
	// new(gossiptest.Network).NewTransport(name). (Not memberlist's own
	// MockNetwork: it can deadlock; see package gossiptest.)
	Transport memberlist.NodeAwareTransport
}

// DefaultConfig returns LAN timings tuned so that a failed peer is noticed
// by all others in about a second (0.75 s measured for 5 members, against
// 5.8 s with memberlist's DefaultLANConfig; see FINDINGS.md). The caller
// sets Name.
//
// Lifeguard stays on: memberlist's awareness multiplier still stretches
// probes when this node is itself slow, and suspects still get the buddy
// warning that lets them refute. Note that with SuspicionMult 2 memberlist
// expects SuspicionMult-2 = 0 confirmations, so the suspicion timeout is
// always its minimum (2 × max(1, log10 N) × 200 ms).
func DefaultConfig() Config {
	return Config{
		BindAddr: "0.0.0.0",
		BindPort: DefaultPort,
		// 200 ms probes with a 100 ms ack timeout: LAN RTTs are well under
		// 1 ms, so 100 ms leaves room for a loaded host and a GC pause.
		ProbeInterval: 200 * time.Millisecond,
		ProbeTimeout:  100 * time.Millisecond,
		// 2 × 200 ms = 400 ms to refute a suspicion (×log10 N above 10 nodes).
		SuspicionMult: 2,
		// 50 ms gossip rounds carry a doomed notice and metadata to all
		// peers in a few rounds (p50 41 ms measured).
		GossipInterval: 50 * time.Millisecond,
		// Full syncs repair missed gossip, e.g. after a partition heals,
		// within 5 s; memberlist's 30 s is too slow for 2-minute notices and
		// it scales the interval up by itself for large clusters.
		PushPullInterval: 5 * time.Second,
		// memberlist's LAN default: enough retransmissions that a broadcast
		// reaches every node with high probability.
		RetransmitMult: 4,
	}
}

// DefaultTestConfig returns DefaultConfig for tests on one machine:
// loopback, a kernel-chosen port and quicker full syncs. The caller sets
// Name (and usually Transport and Logger).
func DefaultTestConfig() Config {
	c := DefaultConfig()
	c.BindAddr = "127.0.0.1"
	c.BindPort = 0
	c.PushPullInterval = time.Second
	return c
}

// Validate reports the first bad setting, naming it; errors wrap
// ErrInvalidConfig.
func (c Config) Validate() error {
	for _, check := range []func() error{c.validateAddrs, c.validateTimings, c.validateKeys} {
		if err := check(); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
	}
	return nil
}

func (c Config) validateAddrs() error {
	if strings.TrimSpace(c.Name) == "" {
		return errors.New("Name is empty (set it to a unique node name, e.g. the host name)")
	}
	if c.Transport == nil {
		if _, err := netip.ParseAddr(c.BindAddr); err != nil {
			return fmt.Errorf("BindAddr %q is not an IP address", c.BindAddr)
		}
	}
	if c.AdvertiseAddr != "" {
		if _, err := netip.ParseAddr(c.AdvertiseAddr); err != nil {
			return fmt.Errorf("AdvertiseAddr %q is not an IP address", c.AdvertiseAddr)
		}
	}
	if c.BindPort < 0 || c.BindPort > 65535 {
		return fmt.Errorf("BindPort %d is out of range 0-65535", c.BindPort)
	}
	if c.AdvertisePort < 0 || c.AdvertisePort > 65535 {
		return fmt.Errorf("AdvertisePort %d is out of range 0-65535", c.AdvertisePort)
	}
	return nil
}

func (c Config) validateTimings() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ProbeInterval", c.ProbeInterval},
		{"ProbeTimeout", c.ProbeTimeout},
		{"GossipInterval", c.GossipInterval},
		{"PushPullInterval", c.PushPullInterval},
	} {
		if d.v <= 0 {
			return fmt.Errorf("%s %v must be > 0", d.name, d.v)
		}
	}
	if c.ProbeTimeout >= c.ProbeInterval {
		return fmt.Errorf("ProbeTimeout %v must be shorter than ProbeInterval %v", c.ProbeTimeout, c.ProbeInterval)
	}
	if c.SuspicionMult < 1 {
		return fmt.Errorf("SuspicionMult %d must be ≥ 1", c.SuspicionMult)
	}
	if c.RetransmitMult < 1 {
		return fmt.Errorf("RetransmitMult %d must be ≥ 1", c.RetransmitMult)
	}
	return nil
}

func (c Config) validateKeys() error {
	for i, k := range c.Keys {
		if err := checkKey(k); err != nil {
			return fmt.Errorf("Keys[%d]: %w", i, err)
		}
	}
	return nil
}

// checkKey reports whether k has an AES key length; errors wrap ErrInvalidKey.
func checkKey(k []byte) error {
	switch len(k) {
	case 16, 24, 32:
		return nil
	}
	return fmt.Errorf("%w: %d bytes, want 16, 24 or 32 (AES-128/192/256)", ErrInvalidKey, len(k))
}

// ParseKey decodes a gossip encryption key written as standard base64 of
// 16, 24 or 32 bytes (for example the output of `openssl rand -base64 32`).
// Errors wrap ErrInvalidKey.
func ParseKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("%w: not standard base64: %v", ErrInvalidKey, err)
	}
	if err := checkKey(k); err != nil {
		return nil, err
	}
	return k, nil
}

// memberlistConfig translates c into memberlist's configuration; the
// caller adds the delegates.
func (c Config) memberlistConfig(keyring *memberlist.Keyring) *memberlist.Config {
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.Name
	mc.BindAddr = c.BindAddr
	mc.BindPort = c.BindPort
	mc.AdvertiseAddr = c.AdvertiseAddr
	mc.AdvertisePort = c.AdvertisePort
	if c.AdvertisePort == 0 {
		mc.AdvertisePort = c.BindPort
	}
	mc.ProbeInterval = c.ProbeInterval
	mc.ProbeTimeout = c.ProbeTimeout
	mc.SuspicionMult = c.SuspicionMult
	mc.GossipInterval = c.GossipInterval
	mc.PushPullInterval = c.PushPullInterval
	mc.RetransmitMult = c.RetransmitMult
	// Joins and full syncs dial TCP; memberlist's 10 s would hold a re-join
	// of a vanished peer (and the caller's shutdown) far too long.
	mc.TCPTimeout = 3 * time.Second
	mc.Keyring = keyring
	if c.Transport != nil {
		mc.Transport = c.Transport
	}
	return mc
}
