package node

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/transfer"
)

// TestConfigValidateNamesTheSetting: every bad setting, in the top level
// or in a group, is refused with ErrConfig and a message naming it.
func TestConfigValidateNamesTheSetting(t *testing.T) {
	ca, err := transfer.NewCA("test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	good := DefaultConfig()
	good.Name = "a1"
	if good.TLS, err = ca.Issue("a1", transfer.RolePeer, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := good.Validate(); err != nil {
		t.Fatalf("the defaults are refused: %v", err)
	}
	for name, tc := range map[string]struct {
		edit func(*Config)
		want string
	}{
		"no name":              {func(c *Config) { c.Name = "" }, "name"},
		"raft lease too long":  {func(c *Config) { c.Raft.LeaderLease = 2 * c.Raft.Heartbeat }, "raft leader lease"},
		"raft commit zero":     {func(c *Config) { c.Raft.CommitTimeout = 0 }, "raft timings"},
		"negative gossip":      {func(c *Config) { c.Gossip.Probe = -time.Second }, "gossip timings"},
		"evacuation rate zero": {func(c *Config) { c.Evacuation.Rate = 0 }, "evacuation rate"},
		"no throughput":        {func(c *Config) { c.Evacuation.Throughput = 0 }, "evacuation throughput"},
		"two ports alike":      {func(c *Config) { c.RaftPort = c.GossipPort }, "gossip-port and raft-port"},
		"another node's cert":  {func(c *Config) { c.Name = "b1" }, "names a1"},
		"relative init":        {func(c *Config) { c.WorkloadInit = "bin/lifeboat-init" }, "workload-init"},
	} {
		t.Run(name, func(t *testing.T) {
			c := good
			tc.edit(&c)
			err := c.Validate()
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate: %v, want ErrConfig naming %q", err, tc.want)
			}
		})
	}
}
