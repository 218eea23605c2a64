package placement

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// srv builds a healthy server; flags in spec: V voter, N nonvoter, L
// leader, D dead, X doomed, U unhealthy. ID "a1" is in zone "a".
func srv(id, cloud, spec string) Server {
	s := Server{ID: id, Zone: id[:1], Cloud: cloud, Healthy: true}
	for _, f := range spec {
		switch f {
		case 'V':
			s.Suffrage = Voter
		case 'N':
			s.Suffrage = Nonvoter
		case 'L':
			s.Leader = true
		case 'D':
			s.Dead, s.Healthy = true, false
		case 'X':
			s.Doomed = true
		case 'U':
			s.Healthy = false
		}
	}
	return s
}

// apply returns ss after the leader executes a; it fails t when a is not
// a legal step for ss.
func apply(t *testing.T, ss []Server, a Action) []Server {
	t.Helper()
	out := slices.Clone(ss)
	i := slices.IndexFunc(out, func(s Server) bool { return s.ID == a.ID })
	if i < 0 {
		t.Fatalf("%v: no such server", a)
	}
	s := &out[i]
	legal := map[ActionKind]bool{
		AddNonvoter:        s.Suffrage == None,
		Promote:            s.Suffrage == Nonvoter && s.Healthy && !s.Doomed,
		Demote:             s.Suffrage == Voter && !s.Leader,
		Remove:             s.Suffrage != None && !s.Leader,
		TransferLeadership: s.Leader,
	}
	if !legal[a.Kind] {
		t.Fatalf("illegal %v on %+v", a, *s)
	}
	switch a.Kind {
	case AddNonvoter, Demote:
		s.Suffrage = Nonvoter
	case Promote:
		s.Suffrage = Voter
	case Remove:
		s.Suffrage = None
	case TransferLeadership:
		j := slices.IndexFunc(out, func(s Server) bool { return s.ID == a.Target })
		if j < 0 || out[j].Suffrage != Voter || !out[j].Healthy {
			t.Fatalf("%v: target is not a healthy voter", a)
		}
		s.Leader, out[j].Leader = false, true
	}
	return out
}

// hasQuorum reports whether the healthy voters of ss are a quorum.
func hasQuorum(ss []Server) bool {
	v, h := 0, 0
	for _, s := range ss {
		if s.Suffrage == Voter {
			v++
			if s.Healthy {
				h++
			}
		}
	}
	return h >= quorum(v)
}

// converge applies Autopilot's first action until there is none, checking
// that a quorum, when present at the start, is never lost. It returns the
// fixed point and the actions taken.
func converge(t *testing.T, ss []Server, cfg AutopilotConfig, maxSteps int) ([]Server, []Action) {
	t.Helper()
	quorate := hasQuorum(ss)
	var taken []Action
	for range maxSteps {
		acts := Autopilot(ss, cfg)
		if len(acts) == 0 {
			return ss, taken
		}
		ss = apply(t, ss, acts[0])
		taken = append(taken, acts[0])
		if quorate && !hasQuorum(ss) {
			t.Fatalf("quorum lost after %v; taken %v", acts[0], taken)
		}
	}
	t.Fatalf("no fixed point after %d steps; taken %v", maxSteps, taken)
	return nil, nil
}

// roles returns the sorted IDs of voters, nonvoters and the leader.
func roles(ss []Server) (voters, spares []string, leader string) {
	for _, s := range sortedByID(ss) {
		switch s.Suffrage {
		case Voter:
			voters = append(voters, s.ID)
		case Nonvoter:
			spares = append(spares, s.ID)
		}
		if s.Leader {
			leader = s.ID
		}
	}
	return voters, spares, leader
}

func TestAutopilotConverges(t *testing.T) {
	cfg := DefaultAutopilotConfig()
	cfg5 := AutopilotConfig{Voters: 5, Spares: 2}
	tests := []struct {
		name         string
		cfg          AutopilotConfig
		servers      []Server
		first        []ActionKind // kinds of the first actions of the first plan
		voters       []string
		spares       []string
		leader       string
		maxZoneVotes int
	}{{
		name: "fresh 5-node cluster, one bootstrap voter",
		cfg:  cfg,
		servers: []Server{srv("a1", "aws", "VL"), srv("a2", "aws", ""), srv("b1", "aws", ""),
			srv("b2", "aws", ""), srv("c1", "aws", "")},
		first:  []ActionKind{AddNonvoter, AddNonvoter, AddNonvoter, AddNonvoter},
		voters: []string{"a1", "b1", "c1"}, spares: []string{"a2", "b2"}, leader: "a1",
	}, {
		name: "dead voter replaced, promote before remove",
		cfg:  cfg,
		servers: []Server{srv("a1", "aws", "VL"), srv("b1", "aws", "V"), srv("c1", "aws", "VD"),
			srv("c2", "aws", "N"), srv("a2", "aws", "N"), srv("b2", "aws", "")},
		first:  []ActionKind{Promote, AddNonvoter, Remove},
		voters: []string{"a1", "b1", "c2"}, spares: []string{"a2", "b2"}, leader: "a1",
	}, {
		name: "doomed leader transfers leadership first",
		cfg:  cfg,
		servers: []Server{srv("a1", "aws", "VLX"), srv("b1", "aws", "V"), srv("c1", "aws", "V"),
			srv("a2", "aws", "N"), srv("b2", "aws", "N")},
		first:  []ActionKind{TransferLeadership},
		voters: []string{"a2", "b1", "c1"}, spares: []string{"b2"}, leader: "b1",
	}, {
		name: "doomed voter replaced",
		cfg:  cfg,
		servers: []Server{srv("a1", "aws", "VL"), srv("b1", "aws", "V"), srv("c1", "aws", "VX"),
			srv("c2", "aws", "N"), srv("b2", "aws", "N")},
		first:  []ActionKind{Promote, Demote},
		voters: []string{"a1", "b1", "c2"}, spares: []string{"b2"}, leader: "a1",
	}, {
		name: "five voters across three zones",
		cfg:  cfg5,
		servers: []Server{srv("a1", "aws", "VL"), srv("a2", "aws", ""), srv("a3", "aws", ""),
			srv("b1", "aws", ""), srv("b2", "aws", ""), srv("b3", "aws", ""), srv("c1", "aws", "")},
		voters: []string{"a1", "a2", "b1", "b2", "c1"}, spares: []string{"a3", "b3"}, leader: "a1",
		maxZoneVotes: 2,
	}, {
		name: "two zones for three voters: best effort 2+1",
		cfg:  cfg,
		servers: []Server{srv("a1", "aws", "VL"), srv("a2", "aws", ""), srv("b1", "aws", ""),
			srv("b2", "aws", "")},
		voters: []string{"a1", "a2", "b1"}, spares: []string{"b2"}, leader: "a1",
	}, {
		name:    "a doomed lone leader waits for a successor, then hands over",
		cfg:     cfg,
		servers: []Server{srv("a1", "aws", "VLX"), srv("b1", "aws", ""), srv("c1", "aws", ""), srv("d1", "aws", "")},
		first:   []ActionKind{AddNonvoter, AddNonvoter, AddNonvoter},
		voters:  []string{"b1", "c1", "d1"}, leader: "b1",
	}, {
		name: "a voter that is not healthy is replaced, then demoted and removed",
		cfg:  cfg,
		servers: []Server{srv("a1", "aws", "VL"), srv("b1", "aws", "V"), srv("c1", "aws", "VU"),
			srv("c2", "aws", "N")},
		first:  []ActionKind{Promote, Demote},
		voters: []string{"a1", "b1", "c2"}, leader: "a1",
	}, {
		name: "scale down from five voters to three",
		cfg:  cfg,
		servers: []Server{srv("a1", "aws", "VL"), srv("a2", "aws", "V"), srv("b1", "aws", "V"),
			srv("b2", "aws", "V"), srv("c1", "aws", "V")},
		first:  []ActionKind{Demote, Demote},
		voters: []string{"a1", "b1", "c1"}, spares: []string{"a2", "b2"}, leader: "a1",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.first) > 0 {
				got := kinds(Autopilot(tt.servers, tt.cfg))
				if len(got) < len(tt.first) || !slices.Equal(got[:len(tt.first)], tt.first) {
					t.Fatalf("first actions %v, want a prefix %v", got, tt.first)
				}
			}
			end, _ := converge(t, tt.servers, tt.cfg, 40)
			voters, spares, leader := roles(end)
			if !slices.Equal(voters, tt.voters) || !slices.Equal(spares, tt.spares) || leader != tt.leader {
				t.Errorf("voters %v spares %v leader %q, want %v %v %q", voters, spares, leader, tt.voters, tt.spares, tt.leader)
			}
			if tt.maxZoneVotes > 0 && maxCount(end, func(s Server) string { return s.Zone }) > tt.maxZoneVotes {
				t.Errorf("a zone holds more than %d voters: %v", tt.maxZoneVotes, voters)
			}
		})
	}
}

// kinds returns the kinds of acts.
func kinds(acts []Action) []ActionKind {
	var out []ActionKind
	for _, a := range acts {
		out = append(out, a.Kind)
	}
	return out
}

// maxCount returns the largest number of voters of ss sharing a key.
func maxCount(ss []Server, key func(Server) string) int {
	n := map[string]int{}
	best := 0
	for _, s := range ss {
		if s.Suffrage == Voter {
			n[key(s)]++
			best = max(best, n[key(s)])
		}
	}
	return best
}

func TestAutopilotConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  AutopilotConfig
		want string // substring of the error; empty for none
	}{
		{DefaultAutopilotConfig(), ""},
		{AutopilotConfig{Voters: 5, Spares: 0}, ""},
		{AutopilotConfig{Voters: 4, Spares: 2}, "voters is 4"},
		{AutopilotConfig{Voters: 0, Spares: 2}, "voters is 0"},
		{AutopilotConfig{Voters: 3, Spares: -1}, "spares is -1"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%+v", tt.cfg), func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig mentioning %q", err, tt.want)
			}
			if Autopilot([]Server{srv("a1", "aws", "L")}, tt.cfg) != nil || VoterTarget(nil, tt.cfg) != nil {
				t.Fatal("an invalid config must give no decisions")
			}
		})
	}
}

func TestNames(t *testing.T) {
	got := []string{None.String(), Nonvoter.String(), Voter.String(), Suffrage(9).String(),
		AddNonvoter.String(), Promote.String(), Demote.String(), Remove.String(),
		TransferLeadership.String(), ActionKind(0).String()}
	want := []string{"none", "nonvoter", "voter", "Suffrage(9)", "add-nonvoter", "promote", "demote",
		"remove", "transfer-leadership", "ActionKind(0)"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
