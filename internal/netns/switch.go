package netns

import (
	"errors"
	"fmt"
)

// Switch is a namespace that holds a bridge: stand-in hosts plug into it
// with a veth pair each, and the root namespace (the test itself) with one
// more, so that every host reaches every other and the test reaches them
// all on one subnet. Deleting the switch's namespace deletes the bridge
// and every veth plugged into it, so nothing outlives Close, and
// CleanupStale finds a switch left by a killed run like any namespace.
type Switch struct {
	ns     *NS
	prefix int
}

// bridgeName is the bridge inside the switch's namespace.
const bridgeName = "br0"

// NewSwitch creates the switch and plugs the root namespace into it with
// rootIP/prefix.
func NewSwitch(label, rootIP string, prefix int) (*Switch, error) {
	ns, err := New(label)
	if err != nil {
		return nil, err
	}
	s := &Switch{ns: ns, prefix: prefix}
	if err := s.init(rootIP); err != nil {
		return nil, errors.Join(err, ns.Close())
	}
	return s, nil
}

func (s *Switch) init(rootIP string) error {
	if err := s.ns.ip("link", "add", bridgeName, "type", "bridge"); err != nil {
		return err
	}
	if err := s.ns.ip("link", "set", bridgeName, "up"); err != nil {
		return err
	}
	root := "lbt" + s.ns.id + "h"
	if err := ip("link", "add", root, "type", "veth", "peer", "name", "uplink", "netns", s.ns.name); err != nil {
		return err
	}
	s.ns.mu.Lock()
	s.ns.veth = root
	s.ns.mu.Unlock()
	if err := ip("addr", "add", fmt.Sprintf("%s/%d", rootIP, s.prefix), "dev", root); err != nil {
		return err
	}
	if err := ip("link", "set", root, "up"); err != nil {
		return err
	}
	return s.ns.ip("link", "set", "uplink", "master", bridgeName, "up")
}

// Plug joins host to the switch: eth0 inside host with addr/prefix, its
// peer enslaved to the bridge.
func (s *Switch) Plug(host *NS, addr string) error {
	port := "p" + host.id
	if err := host.ip("link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", s.ns.name); err != nil {
		return err
	}
	if err := s.ns.ip("link", "set", port, "master", bridgeName, "up"); err != nil {
		return err
	}
	if err := host.ip("addr", "add", fmt.Sprintf("%s/%d", addr, s.prefix), "dev", "eth0"); err != nil {
		return err
	}
	return host.ip("link", "set", "eth0", "up")
}

// Unplug cuts host off the switch (its eth0 goes down): a host that
// vanishes from the network without a word.
func (s *Switch) Unplug(host *NS) error {
	return s.ns.ip("link", "set", "p"+host.id, "down")
}

// Replug undoes Unplug.
func (s *Switch) Replug(host *NS) error {
	return s.ns.ip("link", "set", "p"+host.id, "up")
}

// Close deletes the switch, its bridge and every veth plugged into it.
func (s *Switch) Close() error { return s.ns.Close() }
