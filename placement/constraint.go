package placement

import (
	"fmt"
	"slices"
	"strings"
)

// refusal is the first hard constraint a node fails, in checking order.
type refusal int

// Refusals, in the order they are checked and reported.
const (
	accepted refusal = iota
	refusedExcluded
	refusedIneligible
	refusedZone
	refusedCloud
	refusedMode
	refusedMemory
	refusedCPU
	refusalCount
)

// check returns the first hard constraint of req that nd fails.
func check(req Request, nd Node) refusal {
	switch {
	case slices.Contains(req.Exclude, nd.Name):
		return refusedExcluded
	case !nd.Eligible:
		return refusedIneligible
	case slices.Contains(req.AvoidZones, nd.Zone):
		return refusedZone
	case len(req.Clouds) > 0 && !slices.Contains(req.Clouds, nd.Cloud):
		return refusedCloud
	case !supportsMode(nd, req.Mode):
		return refusedMode
	case nd.Free.MemoryMiB < req.Need.MemoryMiB:
		return refusedMemory
	case nd.Free.CPUMillis < req.Need.CPUMillis:
		return refusedCPU
	}
	return accepted
}

// supportsMode reports whether nd can serve checkpoint mode; an empty
// mode needs nothing and an empty Modes list supports every mode.
func supportsMode(nd Node, mode string) bool {
	return mode == "" || len(nd.Modes) == 0 || slices.Contains(nd.Modes, mode)
}

// filter returns the nodes that meet req's hard constraints and how many
// nodes each refusal turned away.
func filter(req Request, nodes []Node) ([]Node, [refusalCount]int) {
	var ok []Node
	var refused [refusalCount]int
	for _, nd := range nodes {
		r := check(req, nd)
		refused[r]++
		if r == accepted {
			ok = append(ok, nd)
		}
	}
	return ok, refused
}

// summarize renders refusal counts, as in "3 nodes: 1 lacks mode criu,
// 2 lack memory".
func summarize(total int, refused [refusalCount]int, mode string) string {
	noun := "nodes"
	if total == 1 {
		noun = "node"
	}
	parts := []string{}
	for r := refusedExcluded; r < refusalCount; r++ {
		if n := refused[r]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, r.phrase(n == 1, mode)))
		}
	}
	if len(parts) == 0 {
		return fmt.Sprintf("%d %s", total, noun)
	}
	return fmt.Sprintf("%d %s: %s", total, noun, strings.Join(parts, ", "))
}

// phrase says what a refusal means, with the verb agreeing in number.
func (r refusal) phrase(one bool, mode string) string {
	verb := func(singular, plural string) string {
		if one {
			return singular
		}
		return plural
	}
	switch r {
	case refusedExcluded:
		return verb("is", "are") + " excluded"
	case refusedIneligible:
		return verb("is", "are") + " not eligible (dead, doomed or draining)"
	case refusedZone:
		return verb("is", "are") + " in an avoided zone"
	case refusedCloud:
		return verb("is", "are") + " outside the allowed clouds"
	case refusedMode:
		return verb("lacks", "lack") + " mode " + mode
	case refusedMemory:
		return verb("lacks", "lack") + " memory"
	case refusedCPU:
		return verb("lacks", "lack") + " CPU"
	}
	return "accepted"
}
