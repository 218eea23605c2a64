package placement

// PriorityRank orders workload priorities, most important first: critical
// 0, high 1, normal 2, batch 3. The names are the workload spec's; an
// unknown one ranks as critical (the state machine admits none).
func PriorityRank(priority string) int {
	return priorityRank[priority]
}

var priorityRank = map[string]int{"critical": 0, "high": 1, "normal": 2, "batch": 3}
