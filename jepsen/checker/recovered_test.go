package checker

import (
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/jepsen/history"
)

func TestRecovered(t *testing.T) {
	good := func() RecoveryObservation {
		return RecoveryObservation{
			HealedAt:           10 * time.Second,
			WorkloadsRunningAt: map[string]time.Duration{"w1": 11 * time.Second, "w2": 13 * time.Second},
			Leaders:            map[string]string{"h1": "h2", "h2": "h2", "h3": "h2"},
			Bound:              5 * time.Second,
		}
	}
	ws := []string{"w1", "w2"}
	faults := []history.Fault{{Kind: "partition", Start: time.Second, End: 9 * time.Second}}
	v := Recovered(good(), ws, faults)
	expect(t, v, true)
	figure(t, v, "slowest", 3*time.Second)
	figure(t, v, "leader", "h2")
	figure(t, v, "recovered", "2/2")

	for _, tc := range []struct {
		name   string
		change func(*RecoveryObservation)
		faults []history.Fault
		want   string
	}{
		{"never ran", func(r *RecoveryObservation) { delete(r.WorkloadsRunningAt, "w2") }, faults, "w2: never ran"},
		{"too slow", func(r *RecoveryObservation) { r.WorkloadsRunningAt["w1"] = 16 * time.Second }, faults, "w1: ran again 6s after the heal"},
		{"split leaders", func(r *RecoveryObservation) { r.Leaders["h3"] = "h3" }, faults, "h3→h3"},
		{"no leader", func(r *RecoveryObservation) { r.Leaders = map[string]string{"h1": "", "h2": ""} }, faults, "do not agree"},
		{"no reports", func(r *RecoveryObservation) { r.Leaders = nil }, faults, "no host reported"},
		{"no bound", func(r *RecoveryObservation) { r.Bound = 0 }, faults, "Bound"},
		{"fault not healed", func(*RecoveryObservation) {}, []history.Fault{{Kind: "kill", Start: time.Second}}, "fault kill"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := good()
			tc.change(&rec)
			expect(t, Recovered(rec, ws, tc.faults), false, tc.want)
		})
	}
}
