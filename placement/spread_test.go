package placement

import (
	"slices"
	"testing"
)

func TestVoterTargetSpread(t *testing.T) {
	tests := []struct {
		name    string
		voters  int
		servers []Server
		want    []string
	}{{
		name:    "three clouds: no cloud majority even though the zones alone are spread",
		voters:  3,
		servers: []Server{srv("a1", "aws", "VL"), srv("b1", "aws", "V"), srv("c1", "aws", "V"), srv("x1", "gcp", "N"), srv("y1", "azure", "")},
		want:    []string{"a1", "x1", "y1"},
	}, {
		name:    "two clouds, three voters: a cloud majority is unavoidable, split 2+1",
		voters:  3,
		servers: []Server{srv("a1", "aws", "VL"), srv("b1", "aws", "V"), srv("c1", "aws", "V"), srv("x1", "gcp", ""), srv("y1", "gcp", "")},
		want:    []string{"a1", "b1", "x1"},
	}, {
		name:   "five voters: a shared zone is the price of no cloud majority",
		voters: 5,
		servers: []Server{srv("a1", "aws", "VL"), srv("b1", "aws", ""), srv("c1", "aws", ""), srv("d1", "aws", ""),
			srv("e1", "aws", ""), srv("x1", "gcp", ""), srv("x2", "gcp", ""), srv("y1", "azure", ""), srv("y2", "azure", "")},
		want: []string{"a1", "b1", "x1", "x2", "y1"},
	}, {
		name:    "the same zone name in two clouds is two zones",
		voters:  3,
		servers: []Server{srv("a1", "aws", "VL"), srv("a2", "gcp", ""), srv("a3", "azure", ""), srv("b1", "aws", "")},
		want:    []string{"a1", "a2", "a3"},
	}, {
		name:    "a valid set is not churned for an equally good one",
		voters:  3,
		servers: []Server{srv("a9", "aws", "VL"), srv("b9", "aws", "V"), srv("c9", "aws", "V"), srv("a1", "aws", "N"), srv("b1", "aws", "N"), srv("c1", "aws", "")},
		want:    []string{"a9", "b9", "c9"},
	}, {
		name:    "spares are preferred to members",
		voters:  3,
		servers: []Server{srv("a1", "aws", "VL"), srv("b1", "aws", "V"), srv("c1", "aws", ""), srv("c9", "aws", "N")},
		want:    []string{"a1", "b1", "c9"},
	}, {
		name:    "unhealthy, dead and doomed servers are not eligible",
		voters:  3,
		servers: []Server{srv("a1", "aws", "VL"), srv("b1", "aws", "VU"), srv("c1", "aws", "VD"), srv("d1", "aws", "NX")},
		want:    []string{"a1"},
	}, {
		name:    "no eligible server",
		voters:  3,
		servers: []Server{srv("a1", "aws", "VLX")},
		want:    []string{},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := VoterTarget(tt.servers, AutopilotConfig{Voters: tt.voters, Spares: 2})
			if !slices.Equal(got, tt.want) {
				t.Errorf("VoterTarget = %v, want %v", got, tt.want)
			}
		})
	}
}
