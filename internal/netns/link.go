package netns

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Link joins two namespaces directly with a veth pair: ipA/prefix in a,
// ipB/prefix in b, both ends up, loopback up in both. The pair is named
// lbl<random>a / lbl<random>b; it goes away with either namespace.
func Link(a, b *NS, ipA, ipB string, prefix int) error {
	var r [3]byte
	if _, err := rand.Read(r[:]); err != nil {
		return err
	}
	id := hex.EncodeToString(r[:])
	ea, eb := "lbl"+id+"a", "lbl"+id+"b"
	if err := ip("link", "add", ea, "netns", a.name, "type", "veth", "peer", "name", eb, "netns", b.name); err != nil {
		return err
	}
	for _, side := range []struct {
		ns      *NS
		dev, ip string
	}{{a, ea, ipA}, {b, eb, ipB}} {
		steps := [][]string{
			{"addr", "add", fmt.Sprintf("%s/%d", side.ip, prefix), "dev", side.dev},
			{"link", "set", side.dev, "up"},
			{"link", "set", "lo", "up"},
		}
		for _, s := range steps {
			if err := side.ns.ip(s...); err != nil {
				return err
			}
		}
	}
	return nil
}

// Do runs fn on a thread that is inside the namespace: sockets fn creates
// belong to the namespace for good, whichever thread later uses them. fn
// must not start goroutines that expect to be inside. If the thread
// cannot return to its namespace afterwards, it is left locked, so that
// Go ends it with the goroutine instead of reusing it.
func (ns *NS) Do(fn func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: %w", err)
	}
	defer orig.Close()
	target, err := os.Open(ns.Path())
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: %w", err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: enter %s: %w", ns.name, err)
	}
	fnErr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// Stay locked: the thread dies with this goroutine.
		return errors.Join(fnErr, fmt.Errorf("netns: leave %s: %w", ns.name, err))
	}
	runtime.UnlockOSThread()
	return fnErr
}

// NFT loads an nftables ruleset (nft -f syntax) into the namespace.
func (ns *NS) NFT(ruleset string) error {
	cmd := ns.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("netns: nft in %s: %w: %s", ns.name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// dropTable is the nftables table Partition adds and Heal deletes.
const dropTable = "lbt_partition"

// Partition silently drops every packet that arrives in the namespace
// other than on loopback, until Heal. Senders see no error, as when a
// cable is cut; partition both ends of a Link to cut it both ways.
// (Dropping on output instead would fail the senders' writes with EPERM.)
func (ns *NS) Partition() error {
	return ns.NFT(`table inet ` + dropTable + ` {
	chain in { type filter hook input priority -300; policy accept; iifname != "lo" drop; }
}
`)
}

// Heal undoes Partition.
func (ns *NS) Heal() error {
	return ns.NFT("delete table inet " + dropTable + "\n")
}
