package gossip

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/gossip/gossiptest"
)

func TestDefaultConfigs(t *testing.T) {
	for name, c := range map[string]Config{"default": DefaultConfig(), "test": DefaultTestConfig()} {
		c.Name = "n1"
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	c := DefaultConfig()
	if c.ProbeInterval != 200*time.Millisecond || c.ProbeTimeout != 100*time.Millisecond ||
		c.SuspicionMult != 2 || c.GossipInterval != 50*time.Millisecond {
		t.Errorf("DefaultConfig timings drifted from the measured ones: %+v", c)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"empty name", func(c *Config) { c.Name = " " }, "Name is empty"},
		{"bind addr", func(c *Config) { c.BindAddr = "localhost" }, "BindAddr"},
		{"advertise addr", func(c *Config) { c.AdvertiseAddr = "10.0.0" }, "AdvertiseAddr"},
		{"negative port", func(c *Config) { c.BindPort = -1 }, "BindPort -1"},
		{"port too big", func(c *Config) { c.BindPort = 70000 }, "BindPort 70000"},
		{"advertise port", func(c *Config) { c.AdvertisePort = 65536 }, "AdvertisePort"},
		{"key length", func(c *Config) { c.Keys = [][]byte{make([]byte, 16), make([]byte, 20)} }, "Keys[1]: gossip: invalid key: 20 bytes"},
		{"probe interval", func(c *Config) { c.ProbeInterval = 0 }, "ProbeInterval"},
		{"probe timeout", func(c *Config) { c.ProbeTimeout = -time.Second }, "ProbeTimeout"},
		{"timeout not below interval", func(c *Config) { c.ProbeTimeout = c.ProbeInterval }, "shorter than ProbeInterval"},
		{"gossip interval", func(c *Config) { c.GossipInterval = 0 }, "GossipInterval"},
		{"push pull", func(c *Config) { c.PushPullInterval = 0 }, "PushPullInterval"},
		{"suspicion mult", func(c *Config) { c.SuspicionMult = 0 }, "SuspicionMult"},
		{"retransmit mult", func(c *Config) { c.RetransmitMult = 0 }, "RetransmitMult"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Name = "n1"
			tt.modify(&c)
			err := c.Validate()
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want ErrInvalidConfig naming %q", err, tt.want)
			}
		})
	}
}

func TestValidateAcceptsEdges(t *testing.T) {
	c := DefaultConfig()
	c.Name, c.BindAddr, c.AdvertiseAddr, c.AdvertisePort = "n1", "::", "fd00::1", 65535
	c.Keys = [][]byte{make([]byte, 16), make([]byte, 24), make([]byte, 32)}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate = %v", err)
	}
	c.BindAddr = "not an ip"
	c.Transport = new(gossiptest.Network).NewTransport("n1")
	if err := c.Validate(); err != nil {
		t.Errorf("BindAddr should not matter with a Transport: %v", err)
	}
}

func TestParseKey(t *testing.T) {
	for _, n := range []int{16, 24, 32} {
		raw := make([]byte, n)
		raw[0] = byte(n)
		k, err := ParseKey(" " + base64.StdEncoding.EncodeToString(raw) + "\n")
		if err != nil || len(k) != n || k[0] != byte(n) {
			t.Errorf("ParseKey(%d bytes) = %x, %v", n, k, err)
		}
	}
	for _, bad := range []string{"", "not base64!", base64.StdEncoding.EncodeToString(make([]byte, 15)),
		base64.RawURLEncoding.EncodeToString(make([]byte, 32))} {
		if _, err := ParseKey(bad); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ParseKey(%q) = %v, want ErrInvalidKey", bad, err)
		}
	}
}
