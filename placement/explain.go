package placement

import (
	"fmt"
	"strconv"
)

// Explain says why no node can hold req now, for an operator looking at a
// pending workload; "" when ChooseHolder would place it. A request larger
// than every eligible node's whole capacity comes first, since waiting
// for room will not help: "no node offers 2 TiB of memory (largest: 21
// GiB)". Otherwise it is ChooseHolder's count of refusals by reason.
// Nodes come and go, so this is the reason now, not a verdict.
func Explain(req Request, nodes []Node) string {
	if _, err := ChooseHolder(req, nodes); err == nil {
		return ""
	}
	if len(nodes) == 0 {
		return "no node has joined the cluster yet"
	}
	if why := beyondCapacity(req, nodes); why != "" {
		return why
	}
	return "no node can take it now: " + summarize(len(nodes), refusalsOf(req, nodes), req.Mode)
}

// beyondCapacity says what req needs that no eligible node has at all,
// or "" (also when no node is eligible: then that is the reason).
func beyondCapacity(req Request, nodes []Node) string {
	var most Resources
	eligible := false
	for _, nd := range nodes {
		if nd.Eligible {
			eligible = true
			most.MemoryMiB = max(most.MemoryMiB, nd.Capacity.MemoryMiB)
			most.CPUMillis = max(most.CPUMillis, nd.Capacity.CPUMillis)
		}
	}
	switch {
	case !eligible:
		return ""
	case req.Need.MemoryMiB > most.MemoryMiB:
		need, got := MiB(req.Need.MemoryMiB), MiB(most.MemoryMiB)
		if need == got { // rounded to the same: say it exactly
			need, got = strconv.FormatInt(req.Need.MemoryMiB, 10)+" MiB", strconv.FormatInt(most.MemoryMiB, 10)+" MiB"
		}
		return fmt.Sprintf("no node offers %s of memory (largest: %s)", need, got)
	case req.Need.CPUMillis > most.CPUMillis:
		need, got := Cores(req.Need.CPUMillis), Cores(most.CPUMillis)
		if need == got {
			need, got = strconv.FormatInt(req.Need.CPUMillis, 10)+" millicores", strconv.FormatInt(most.CPUMillis, 10)+" millicores"
		}
		return fmt.Sprintf("no node offers %s of CPU (largest: %s)", need, got)
	}
	return ""
}

// refusalsOf counts the nodes each refusal turned away.
func refusalsOf(req Request, nodes []Node) [refusalCount]int {
	_, r := filter(req, nodes)
	return r
}

// MiB says an amount of memory in the largest unit that keeps it at least
// 1, with at most one decimal: "512 MiB", "21 GiB", "1.5 TiB".
func MiB(n int64) string {
	switch {
	case n >= 1<<20:
		return decimal(float64(n)/(1<<20)) + " TiB"
	case n >= 1<<10:
		return decimal(float64(n)/(1<<10)) + " GiB"
	}
	return strconv.FormatInt(n, 10) + " MiB"
}

// Cores says an amount of CPU in cores: "0.5 cores", "1 core", "8 cores".
func Cores(millis int64) string {
	if millis == 1000 {
		return "1 core"
	}
	return decimal(float64(millis)/1000) + " cores"
}

// decimal is f with at most one decimal, none when it is whole.
func decimal(f float64) string {
	return strconv.FormatFloat(float64(int64(f*10+0.5))/10, 'f', -1, 64)
}
