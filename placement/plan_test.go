package placement

import (
	"slices"
	"strings"
	"testing"
)

func TestAutopilotFirstPlan(t *testing.T) {
	cfg := DefaultAutopilotConfig()
	tests := []struct {
		name    string
		servers []Server
		want    []string // rendered actions
	}{{
		name: "everything already ideal",
		servers: []Server{srv("a1", "aws", "VL"), srv("b1", "aws", "V"), srv("c1", "aws", "V"),
			srv("a2", "aws", "N"), srv("b2", "aws", "N"), srv("c2", "aws", "")},
	}, {
		name:    "doomed leader: transfer and nothing else",
		servers: []Server{srv("a1", "aws", "VLX"), srv("b1", "aws", "V"), srv("c1", "aws", "V"), srv("d1", "aws", "N")},
		want:    []string{"transfer-leadership a1 to b1 (leader is doomed)"},
	}, {
		name:    "quorum already lost: nothing can commit",
		servers: []Server{srv("a1", "aws", "VL"), srv("b1", "aws", "VD"), srv("c1", "aws", "VD"), srv("d1", "aws", "N")},
	}, {
		name: "an unhealthy leader: the plan stops before a demotion would lose the quorum",
		servers: []Server{srv("a1", "aws", "VLU"), srv("b1", "aws", "VX"), srv("c1", "aws", "VX"),
			srv("d1", "aws", "N")},
		want: []string{"promote d1 (ideal voter)", "demote b1 (voter is doomed)"},
	}, {
		name:    "not enough healthy servers: keep what there is",
		servers: []Server{srv("a1", "aws", "VL"), srv("b1", "aws", "D"), srv("c1", "aws", "U")},
	}, {
		name:    "not enough healthy servers: a dead third voter still goes",
		servers: []Server{srv("a1", "aws", "VL"), srv("b1", "aws", "V"), srv("c1", "aws", "VD")},
		want:    []string{"remove c1 (voter is dead)"},
	}, {
		name: "a doomed voter stays until its replacement votes",
		servers: []Server{srv("a1", "aws", "VL"), srv("b1", "aws", "V"), srv("c1", "aws", "VX"),
			srv("c2", "aws", "")},
		want: []string{"add-nonvoter c2 (ideal voter; catches up as a nonvoter before promotion)"},
	}, {
		name: "surplus and dead spares are removed",
		servers: []Server{srv("a1", "aws", "VL"), srv("b1", "aws", "V"), srv("c1", "aws", "V"),
			srv("a2", "aws", "N"), srv("b2", "aws", "N"), srv("c2", "aws", "N"), srv("d1", "aws", "ND"),
			srv("d2", "aws", "NX")},
		want: []string{"remove c2 (nonvoter is surplus to the spread voter and spare sets)",
			"remove d1 (nonvoter is dead)", "remove d2 (nonvoter is doomed)"},
	}, {
		name: "spares move to zones the voters do not use",
		servers: []Server{srv("a1", "aws", "VL"), srv("b1", "aws", "V"), srv("c1", "aws", "V"),
			srv("a2", "aws", "N"), srv("b2", "aws", "N"), srv("d1", "aws", "")},
		want: []string{"add-nonvoter d1 (spare)", "remove b2 (nonvoter is surplus to the spread voter and spare sets)"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, a := range Autopilot(tt.servers, cfg) {
				got = append(got, a.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got\n %s\nwant\n %s", strings.Join(got, "\n "), strings.Join(tt.want, "\n "))
			}
		})
	}
}
