package nemesis

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/lifeboat/lifeboat/jepsen/cluster"
)

// tableSeq numbers the nftables tables: every fault has its own, so
// overlapping faults add up and each heal removes only its own rules.
var tableSeq atomic.Uint64

// drops is a network fault's plan: for each host (by name), the hosts
// whose packets it drops on arrival.
type drops map[string][]string

// links are the directed links the plan cuts, sorted.
func (d drops) links() []Link {
	var out []Link
	for to, froms := range d {
		for _, from := range froms {
			out = append(out, Link{From: from, To: to})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].From != out[j].From {
			return out[i].From < out[j].From
		}
		return out[i].To < out[j].To
	})
	return out
}

// ruleset is the nft -f text of one table with an input chain at the
// earliest priority holding rules.
func ruleset(table string, rules []string) string {
	return "table inet " + table + " {\n\tchain in { type filter hook input priority -300; policy accept;\n\t\t" +
		strings.Join(rules, ";\n\t\t") + ";\n\t}\n}\n"
}

// dropRule drops packets from the IPs, after the optional match extra
// ("numgen random mod 100 < 25").
func dropRule(ips []string, extra string) string {
	r := "ip saddr { " + strings.Join(ips, ", ") + " }"
	if extra != "" {
		r += " " + extra
	}
	return r + " drop"
}

// netFault loads rules per host (host name -> rules) into a fresh table
// in each host's namespace; Heal deletes those tables. If loading fails
// half-way, what was loaded is removed again.
func netFault(c *cluster.Cluster, kind, detail string, rules map[string][]string) (*Fault, error) {
	table := fmt.Sprintf("jn%d_%d", os.Getpid()%100000, tableSeq.Add(1))
	var loaded []*cluster.Host
	del := func(context.Context) error {
		var errs []error
		for _, h := range loaded {
			if err := h.NS.NFT("delete table inet " + table + "\n"); err != nil && !strings.Contains(err.Error(), "No such file") {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	hosts := make([]string, 0, len(rules))
	for name := range rules {
		hosts = append(hosts, name)
	}
	sort.Strings(hosts)
	for _, name := range hosts {
		h := c.Host(name)
		if h == nil {
			return nil, errors.Join(fmt.Errorf("nemesis: %s: no host %q", kind, name), del(context.Background()))
		}
		if err := h.NS.NFT(ruleset(table, rules[name])); err != nil {
			return nil, errors.Join(err, del(context.Background()))
		}
		loaded = append(loaded, h)
	}
	return &Fault{Kind: kind, Detail: detail, Hosts: hosts, heal: del}, nil
}

// dropFault turns a drops plan (extra: an optional match before drop)
// into a loaded fault.
func dropFault(c *cluster.Cluster, kind, detail string, d drops, extra string) (*Fault, error) {
	rules := map[string][]string{}
	for to, froms := range d {
		if len(froms) == 0 {
			continue
		}
		var ips []string
		for _, from := range froms {
			h := c.Host(from)
			if h == nil {
				return nil, fmt.Errorf("nemesis: %s: no host %q", kind, from)
			}
			ips = append(ips, h.IP)
		}
		rules[to] = []string{dropRule(ips, extra)}
	}
	f, err := netFault(c, kind, detail, rules)
	if err != nil {
		return nil, err
	}
	f.Links = d.links()
	return f, nil
}
