package placement

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// randomCluster draws a cluster of 1 to 9 servers over 1 to 3 clouds of
// 1 to 3 zones each, with random suffrage, health and doom. How often a
// server is unhealthy or doomed varies per cluster, so that calm clusters
// and clusters in trouble are both common. The leader is a healthy voter
// when there is one, but now and then any voter that is not dead: a
// leader whose lease or gossip health has lapsed still leads Raft until it
// steps down.
func randomCluster(r *rand.Rand) ([]Server, AutopilotConfig) {
	clouds := []string{"aws", "gcp", "azure"}[:1+r.IntN(3)]
	sick, doomed := 2+r.IntN(8), 2+r.IntN(8) // one in sick (doomed) servers
	ss := make([]Server, 1+r.IntN(9))
	var healthy, live []int
	for i := range ss {
		s := Server{ID: fmt.Sprintf("s%d", i), Cloud: clouds[r.IntN(len(clouds))]}
		s.Zone = string(rune('a' + r.IntN(3)))
		s.Suffrage = Suffrage(r.IntN(3))
		s.Healthy = r.IntN(sick) > 0
		s.Dead = !s.Healthy && r.IntN(2) == 0
		s.Doomed = r.IntN(doomed) == 0
		if s.Suffrage == Voter && s.Healthy {
			healthy = append(healthy, i)
		}
		if s.Suffrage == Voter && !s.Dead {
			live = append(live, i)
		}
		ss[i] = s
	}
	if r.IntN(4) == 0 {
		healthy = live
	}
	if len(healthy) > 0 {
		ss[healthy[r.IntN(len(healthy))]].Leader = true
	}
	cfg := AutopilotConfig{Voters: []int{3, 5}[r.IntN(2)], Spares: r.IntN(4)}
	return ss, cfg
}

// penalty is the reference model's spread score of a voter set: for zones
// and then clouds, 0 when none holds a majority, else the largest count.
// Lower is more spread.
func penalty(set []Server) [2]int {
	n := len(set)
	score := func(key func(Server) string) int {
		c := map[string]int{}
		top := 0
		for _, s := range set {
			c[key(s)]++
			top = max(top, c[key(s)])
		}
		if top <= n/2 {
			return 0
		}
		return top
	}
	return [2]int{score(func(s Server) string { return zoneKey(s.Cloud, s.Zone) }),
		score(func(s Server) string { return s.Cloud })}
}

// bestPenalty is the smallest penalty of any k-subset of cands, found by
// trying them all.
func bestPenalty(cands []Server, k int) [2]int {
	best := [2]int{k + 1, k + 1}
	var rec func(start int, pick []Server)
	rec = func(start int, pick []Server) {
		if len(pick) == k {
			if p := penalty(pick); slices.Compare(p[:], best[:]) < 0 {
				best = p
			}
			return
		}
		for i := start; i < len(cands); i++ {
			rec(i+1, append(pick, cands[i]))
		}
	}
	rec(0, nil)
	return best
}

// eligible returns the healthy, non-doomed servers of ss.
func eligible(ss []Server) []Server {
	return slices.DeleteFunc(slices.Clone(ss), func(s Server) bool { return !s.Healthy || s.Doomed })
}

// clouds counts the distinct clouds of ss.
func clouds(ss []Server) int {
	m := map[string]bool{}
	for _, s := range ss {
		m[s.Cloud] = true
	}
	return len(m)
}

func TestAutopilotProperties(t *testing.T) {
	for seed := range uint64(3000) {
		r := rand.New(rand.NewPCG(seed, 0x5eed))
		ss, cfg := randomCluster(r)
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			checkWholePlan(t, ss, cfg)
			checkOrderIndependent(t, ss, cfg, r)
			end, _ := converge(t, ss, cfg, 4*len(ss)+4)
			if hasQuorum(ss) {
				checkFixedPoint(t, ss, end, cfg)
			}
		})
	}
}

// checkWholePlan executes a whole plan in order: each step must be legal
// and, when the cluster starts with a quorum, keep it.
func checkWholePlan(t *testing.T, ss []Server, cfg AutopilotConfig) {
	quorate := hasQuorum(ss)
	for _, a := range Autopilot(ss, cfg) {
		ss = apply(t, ss, a)
		if quorate && !hasQuorum(ss) {
			t.Fatalf("quorum lost executing the plan at %v", a)
		}
	}
}

// checkOrderIndependent shuffles the input: the decisions must not change.
func checkOrderIndependent(t *testing.T, ss []Server, cfg AutopilotConfig, r *rand.Rand) {
	shuffled := slices.Clone(ss)
	r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	if a, b := Autopilot(ss, cfg), Autopilot(shuffled, cfg); !slices.Equal(a, b) {
		t.Fatalf("input order changed the plan: %v vs %v", a, b)
	}
	if a, b := VoterTarget(ss, cfg), VoterTarget(shuffled, cfg); !slices.Equal(a, b) {
		t.Fatalf("input order changed the target: %v vs %v", a, b)
	}
}

// checkFixedPoint checks where a quorate cluster settles: exactly the
// target voters, as spread as the reference model allows, and the wanted
// number of healthy spares.
func checkFixedPoint(t *testing.T, start, end []Server, cfg AutopilotConfig) {
	cands := eligible(start)
	want := min(cfg.Voters, len(cands))
	var voters, spares []Server
	for _, s := range end {
		switch s.Suffrage {
		case Voter:
			voters = append(voters, s)
		case Nonvoter:
			spares = append(spares, s)
		}
	}
	if want == 0 {
		return // the leader stays alone: nobody can take over
	}
	var got []string
	for _, s := range voters {
		got = append(got, s.ID)
	}
	slices.Sort(got)
	if target := VoterTarget(end, cfg); len(got) != want || !slices.Equal(got, target) {
		t.Fatalf("fixed point voters %v, want the %d of %v", got, want, target)
	}
	if got, best := penalty(voters), bestPenalty(cands, want); got != best {
		t.Fatalf("voters %v have spread penalty %v, best possible is %v", voters, got, best)
	}
	spreadExists := bestPenalty(cands, want)[0] == 0 && (clouds(cands) == 1 || bestPenalty(cands, want)[1] == 0)
	if p := penalty(voters); spreadExists && (p[0] != 0 || (clouds(cands) > 1 && p[1] != 0)) {
		t.Fatalf("a spread voter set exists but voters %v are not spread", voters)
	}
	if wantSpares := min(cfg.Spares, len(cands)-want); len(spares) != wantSpares || len(eligible(spares)) != wantSpares {
		t.Fatalf("spares %v, want %d healthy non-doomed", spares, wantSpares)
	}
	if i := slices.IndexFunc(end, func(s Server) bool { return s.Leader }); i < 0 || end[i].Suffrage != Voter || end[i].Doomed {
		t.Fatalf("fixed point has no healthy, non-doomed leader: %v", end)
	}
}
