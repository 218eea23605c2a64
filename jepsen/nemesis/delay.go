package nemesis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/lifeboat/lifeboat/internal/netns"
	"github.com/lifeboat/lifeboat/jepsen/cluster"
)

// peerPorts are the agents' default TCP ports between hosts (node's
// DefaultConfig; the cluster does not change them): gossip
// (memberlist push/pull), Raft, checkpoint transfer (TLS on TCP) and the
// admin/peer HTTP API.
var peerPorts = []uint16{7946, 7947, TransferPort, 7949}

// Delay adds latency to the TCP traffic between hosts: d, chosen
// uniformly in [Min, Max] for each fault, plus up to d/5 of jitter per
// chunk (bytes are never reordered), on either one running host's peer
// connections both ways or every host's. Min, Max: 0 <= Min <= Max, Max > 0.
//
// The kernel has neither netem nor the nftables queue statement, so the
// delay is a userspace proxy in the harness: in each affected namespace
// an nftables nat rule (output hook) sends new TCP connections to the
// other hosts' peer ports (peerPorts) to a listener of the proxy in that
// namespace, which looks up the original destination (SO_ORIGINAL_DST),
// dials it from the harness's namespace and relays both ways, late. (The
// listener cannot sit on the switch's root address: SO_ORIGINAL_DST
// reads the conntrack table of the listening socket's namespace, and the
// rewrite happened in the host's.)
// Connections already established are killed (ss -K) so that they
// reconnect through the proxy; heal deletes the rules and closes the
// proxy, which breaks the relayed connections so that they reconnect
// directly.
//
// Only TCP is delayed: Raft, memberlist push/pull, the peer HTTP API
// (lease renewals among it) and transfers over TCP. UDP (memberlist
// probes and gossip, QUIC transfers) is not. Receivers see relayed
// connections come from the switch's root address, not from the
// sending host, which is why Delay is ClassNet: in a mixed schedule it
// never overlaps another network fault, whose rules match host addresses.
type Delay struct{ Min, Max time.Duration }

func (Delay) Kind() string  { return "delay" }
func (Delay) Class() string { return ClassNet }

func (n Delay) Inject(_ context.Context, c *cluster.Cluster, r *rand.Rand) (*Fault, error) {
	if n.Min < 0 || n.Max <= 0 || n.Min > n.Max {
		return nil, fmt.Errorf("nemesis: delay %v..%v: want 0 <= Min <= Max and Max > 0", n.Min, n.Max)
	}
	if len(c.Hosts) < 2 {
		return nil, fmt.Errorf("%w: %s needs 2", ErrTooFewHosts, n.Kind())
	}
	d := n.Min + time.Duration(r.Int64N(int64(n.Max-n.Min)+1))
	var x *cluster.Host // nil: every host
	hosts := names(c.Hosts)
	who := "every host {" + strings.Join(hosts, ",") + "}"
	if r.IntN(2) == 0 {
		if x = pick(r, running(c)); x == nil {
			return nil, fmt.Errorf("%w: %s: no host runs", ErrNoTarget, n.Kind())
		}
		hosts, who = []string{x.Name}, x.Name+" (both ways)"
	}
	var ips []string
	for _, h := range c.Hosts {
		ips = append(ips, h.IP)
	}
	jitter := d / 5
	_, heal, err := startDelay(delayPlan(c.Hosts, x), ips, d, jitter, c.Config().Logger)
	if err != nil {
		return nil, fmt.Errorf("nemesis: %s: %w", n.Kind(), err)
	}
	detail := fmt.Sprintf("%v (+0-%v jitter) on the peer TCP of %s", d, jitter, who)
	return &Fault{Kind: n.Kind(), Detail: detail, Hosts: hosts, heal: heal}, nil
}

// delayTarget is one namespace whose new TCP connections to the peer
// ports of the hosts at IPs to go through the proxy; ip is its own
// address.
type delayTarget struct {
	ns *netns.NS
	ip string
	to []string
}

// delayPlan: with x, x's connections to every other host and every other
// host's to x; with x nil, every host's to every other.
func delayPlan(hosts []*cluster.Host, x *cluster.Host) []delayTarget {
	var out []delayTarget
	for _, h := range hosts {
		var to []string
		for _, o := range hosts {
			if o != h && (x == nil || h == x || o == x) {
				to = append(to, o.IP)
			}
		}
		if len(to) > 0 {
			out = append(out, delayTarget{ns: h.NS, ip: h.IP, to: to})
		}
	}
	return out
}

// startDelay starts a proxy (relaying only to the peer ports of allowed
// IPs), gives it a listener in every target's namespace, loads the nat
// rules and kills the peer connections already established there. It
// returns the proxy and the heal: delete the rules, then close the
// proxy. On error, what was done is undone.
func startDelay(targets []delayTarget, allowed []string, d, jitter time.Duration, log *slog.Logger) (*delayProxy, func(context.Context) error, error) {
	allow := func(dst netip.AddrPort) bool {
		return slices.Contains(peerPorts, dst.Port()) && slices.Contains(allowed, dst.Addr().String())
	}
	p := newDelayProxy(d, jitter, originalDst, allow, log)
	table := fmt.Sprintf("jd%d_%d", os.Getpid()%100000, tableSeq.Add(1))
	var loaded []*netns.NS
	heal := func(context.Context) error {
		var errs []error
		for _, ns := range loaded {
			if err := ns.NFT("delete table ip " + table + "\n"); err != nil && !strings.Contains(err.Error(), "No such file") {
				errs = append(errs, err)
			}
		}
		return errors.Join(append(errs, p.Close())...)
	}
	for _, t := range targets {
		port, err := listenIn(p, t.ns, t.ip)
		if err != nil {
			return nil, nil, errors.Join(err, heal(context.Background()))
		}
		if err := t.ns.NFT(natRuleset(table, t.to, t.ip, port)); err != nil {
			return nil, nil, errors.Join(err, heal(context.Background()))
		}
		loaded = append(loaded, t.ns)
	}
	for _, t := range targets {
		if err := killPeerConns(t.ns, t.to); err != nil {
			return nil, nil, errors.Join(err, heal(context.Background()))
		}
	}
	return p, heal, nil
}

// listenIn opens a listener of p on ip inside ns and returns its port.
func listenIn(p *delayProxy, ns *netns.NS, ip string) (int, error) {
	var ln net.Listener
	if err := ns.Do(func() error {
		var err error
		ln, err = net.Listen("tcp4", net.JoinHostPort(ip, "0"))
		return err
	}); err != nil {
		return 0, fmt.Errorf("proxy listener in %s: %w", ns.Name(), err)
	}
	if err := p.serve(ln); err != nil {
		return 0, err
	}
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// natRuleset is a table whose output nat chain sends new TCP connections
// to the peer ports of to (IPs) to ip:port.
func natRuleset(table string, to []string, ip string, port int) string {
	ports := make([]string, len(peerPorts))
	for i, pp := range peerPorts {
		ports[i] = fmt.Sprint(pp)
	}
	return fmt.Sprintf("table ip %s {\n\tchain out { type nat hook output priority -100; policy accept;\n"+
		"\t\tip daddr { %s } tcp dport { %s } dnat to %s:%d;\n\t}\n}\n",
		table, strings.Join(to, ", "), strings.Join(ports, ", "), ip, port)
}

// killPeerConns destroys (ss -K, which resets the peer too) the
// established TCP connections in ns between a peer port here or there
// and the hosts at to.
func killPeerConns(ns *netns.NS, to []string) error {
	args := []string{"-K", "-t", "-n", "state", "established", "("}
	for i, ip := range to {
		if i > 0 {
			args = append(args, "or")
		}
		args = append(args, "dst", ip)
	}
	args = append(args, ")", "and", "(")
	for i, pp := range peerPorts {
		if i > 0 {
			args = append(args, "or")
		}
		args = append(args, "sport", "=", fmt.Sprintf(":%d", pp), "or", "dport", "=", fmt.Sprintf(":%d", pp))
	}
	args = append(args, ")")
	if out, err := ns.Command("ss", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ss -K in %s: %w: %s", ns.Name(), err, strings.TrimSpace(string(out)))
	}
	return nil
}
