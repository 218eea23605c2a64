package placement

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Resources is an amount of memory and CPU.
type Resources struct {
	MemoryMiB int64
	CPUMillis int64
}

// Node is one peer as workload placement sees it.
type Node struct {
	Name  string
	Zone  string
	Cloud string
	// Eligible reports whether the node may take work: alive, not doomed,
	// not draining or drained.
	Eligible bool
	// Free is the node's capacity minus what its workloads request.
	Free Resources
	// Capacity is all the node offers to workloads, used or not (Explain).
	Capacity Resources
	// Modes lists the checkpoint modes the node can serve (criu, app,
	// none). An empty list means every mode: a node that reports nothing
	// is not refused for it.
	Modes []string
	// Load is the number of workloads the node holds.
	Load int
}

// Request is what one workload needs from a holder or a standby.
type Request struct {
	// Workload is the workload's ID, for error messages.
	Workload string
	// Mode is the checkpoint mode the node must support. Empty needs none.
	Mode string
	// Need is the capacity the workload requests.
	Need Resources
	// Prefer lists node names to choose first, best first.
	Prefer []string
	// AvoidZones lists zone names (Node.Zone) never to use.
	AvoidZones []string
	// Clouds, when non-empty, lists the only clouds to use.
	Clouds []string
	// Exclude lists node names never to use, such as the current holder.
	Exclude []string
}

// ErrNoCandidate is wrapped by ChooseHolder's error when no node meets the
// hard constraints; the message says why each node was refused.
var ErrNoCandidate = errors.New("placement: no candidate node")

// ChooseHolder returns the node that should hold the workload. The hard
// constraints are: Eligible, supports req.Mode, Free covers req.Need in
// memory and CPU, zone not in AvoidZones, cloud in Clouds (when Clouds is
// non-empty), name not in Exclude. Among the nodes that meet them it takes
// the first in Prefer order, then the least loaded, then the one with the
// most free memory, then the first by name. When none meets them, the
// error wraps ErrNoCandidate and counts the refusals by reason, each node
// counted once under the first constraint it fails, in the order above
// with Exclude first.
func ChooseHolder(req Request, nodes []Node) (string, error) {
	feasible, refusals := filter(req, nodes)
	if len(feasible) == 0 {
		return "", fmt.Errorf("%w for workload %q (mode %q, %d MiB, %dm CPU): %s",
			ErrNoCandidate, req.Workload, req.Mode, req.Need.MemoryMiB, req.Need.CPUMillis,
			summarize(len(nodes), refusals, req.Mode))
	}
	slices.SortFunc(feasible, byScore(req))
	return feasible[0].Name, nil
}

// ChooseStandbys returns up to n standbys for a workload held by holder,
// best first. They meet the same hard constraints as a holder (a standby
// must be able to restore the workload) and are never the holder. They
// are picked one at a time, each time taking the node that, in order:
// is not in the holder's zone; has the fewest of the holder and the
// standbys already picked in its zone; has the fewest of them in its
// cloud (so other clouds come first); then scores best as in ChooseHolder.
//
// The holder's zone is a strong preference, not a constraint: a standby
// in the same zone still survives the loss of the holder's host, which is
// what spot capacity loses most. To forbid it, put the zone in AvoidZones.
// A holder that is not among nodes imposes no zone or cloud preference.
func ChooseStandbys(req Request, holder string, nodes []Node, n int) []string {
	feasible, _ := filter(req, nodes)
	feasible = slices.DeleteFunc(feasible, func(nd Node) bool { return nd.Name == holder })
	slices.SortFunc(feasible, byScore(req))
	zones, clouds := map[string]int{}, map[string]int{}
	holderZone := ""
	if i := slices.IndexFunc(nodes, func(nd Node) bool { return nd.Name == holder }); i >= 0 {
		holderZone = zoneKey(nodes[i].Cloud, nodes[i].Zone)
		zones[holderZone]++
		clouds[nodes[i].Cloud]++
	}
	var out []string
	for len(out) < n && len(feasible) > 0 {
		i := bestStandby(feasible, holderZone, zones, clouds)
		nd := feasible[i]
		out = append(out, nd.Name)
		zones[zoneKey(nd.Cloud, nd.Zone)]++
		clouds[nd.Cloud]++
		feasible = slices.Delete(feasible, i, i+1)
	}
	return out
}

// bestStandby returns the index in ranked (sorted by byScore) of the next
// standby: ChooseStandbys' spread keys decide, rank order breaks ties.
func bestStandby(ranked []Node, holderZone string, zones, clouds map[string]int) int {
	key := func(nd Node) [3]int {
		z := zoneKey(nd.Cloud, nd.Zone)
		return [3]int{b2i(holderZone != "" && z == holderZone), zones[z], clouds[nd.Cloud]}
	}
	best := 0
	for i := 1; i < len(ranked); i++ {
		ki, kb := key(ranked[i]), key(ranked[best])
		if slices.Compare(ki[:], kb[:]) < 0 {
			best = i
		}
	}
	return best
}

// byScore orders feasible nodes best first: Prefer order, least Load,
// most free memory, name.
func byScore(req Request) func(a, b Node) int {
	pref := make(map[string]int, len(req.Prefer))
	for i, name := range req.Prefer {
		if _, dup := pref[name]; !dup {
			pref[name] = i
		}
	}
	rank := func(nd Node) int {
		if i, ok := pref[nd.Name]; ok {
			return i
		}
		return len(req.Prefer)
	}
	return func(a, b Node) int {
		return cmp.Or(
			cmp.Compare(rank(a), rank(b)),
			cmp.Compare(a.Load, b.Load),
			cmp.Compare(b.Free.MemoryMiB, a.Free.MemoryMiB),
			strings.Compare(a.Name, b.Name),
		)
	}
}
