package nemesis

import "time"

// DefaultPauseHold is the least time All's pause keeps an agent stopped:
// above the agent's default lease TTL (6 s).
const DefaultPauseHold = 7 * time.Second

// All is every nemesis, those acting on a workload's holder choosing among
// workloads. Ring on fewer than 4 hosts is dropped by Run
// (ErrTooFewHosts).
func All(workloads []string) []Nemesis {
	return []Nemesis{
		PartitionHalves{}, IsolateLeader{}, IsolateHolder(workloads...), OneWay{}, Ring{},
		Flaky{Percent: 25}, Delay{Min: 20 * time.Millisecond, Max: 500 * time.Millisecond}, Pause{Hold: DefaultPauseHold}, KillRestart{},
		Notice{}, NoticeDuplicate{}, NoticeMany{}, NoticeLost{}, TransferCut(workloads...), KillAt2PC(workloads...),
		NoticeInCheckpoint(workloads...), ClockJump{Min: 10 * time.Second, Max: 60 * time.Second, Workloads: workloads},
	}
}
