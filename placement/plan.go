package placement

import "slices"

// plan accumulates Autopilot's actions while tracking the voter counts of
// the configuration they produce, so that every action is checked against
// the configuration left by the actions before it.
type plan struct {
	voters  int // voters after the actions so far
	healthy int // healthy voters after the actions so far
	ideal   int // number of ideal voters: the floor for shrinking
	actions []Action
}

// newPlan starts a plan from the current configuration.
func newPlan(ss []Server, ideal int) *plan {
	p := &plan{ideal: ideal}
	for _, s := range ss {
		if s.Suffrage == Voter {
			p.voters++
			if s.Healthy {
				p.healthy++
			}
		}
	}
	return p
}

// add appends a if the configuration it produces, dv more voters of which
// dh more healthy, keeps a healthy quorum; it reports whether it did.
func (p *plan) add(a Action, dv, dh int) bool {
	v, h := p.voters+dv, p.healthy+dh
	if h < quorum(v) {
		return false
	}
	p.voters, p.healthy = v, h
	p.actions = append(p.actions, a)
	return true
}

// grow applies rule 2 of Autopilot: promotions first, because they add
// voters at once, then members that must first join as nonvoters (ideal
// voters before spares).
func (p *plan) grow(ss []Server, ideal, spares map[string]bool) {
	for _, s := range ss {
		if ideal[s.ID] && s.Suffrage == Nonvoter {
			p.add(Action{Kind: Promote, ID: s.ID, Reason: "ideal voter"}, 1, 1)
		}
	}
	for _, s := range ss {
		if ideal[s.ID] && s.Suffrage == None {
			p.add(Action{Kind: AddNonvoter, ID: s.ID, Reason: "ideal voter; catches up as a nonvoter before promotion"}, 0, 0)
		}
	}
	for _, s := range ss {
		if spares[s.ID] && s.Suffrage == None {
			p.add(Action{Kind: AddNonvoter, ID: s.ID, Reason: "spare"}, 0, 0)
		}
	}
}

// shrinkVoters applies rule 3 of Autopilot. Dead voters go first: taking
// one out lowers the quorum without losing a healthy vote. The leader is
// never touched here (rule 1 moves leadership first).
func (p *plan) shrinkVoters(ss []Server, ideal map[string]bool) {
	var out []Server
	for _, s := range ss {
		if s.Suffrage == Voter && !ideal[s.ID] && !s.Leader {
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, func(a, b Server) int { return unwantedRank(a) - unwantedRank(b) })
	for _, s := range out {
		if p.voters-1 < p.ideal {
			return
		}
		dh := 0
		if s.Healthy {
			dh = -1
		}
		kind := Demote
		if s.Dead {
			kind = Remove
		}
		p.add(Action{Kind: kind, ID: s.ID, Reason: "voter " + unwantedReason(s)}, -1, dh)
	}
}

// pruneNonvoters applies rule 4 of Autopilot: a nonvoter that is neither
// an ideal voter nor a wanted spare is removed from Raft.
func (p *plan) pruneNonvoters(ss []Server, ideal, spares map[string]bool) {
	for _, s := range ss {
		if s.Suffrage == Nonvoter && !ideal[s.ID] && !spares[s.ID] {
			p.add(Action{Kind: Remove, ID: s.ID, Reason: "nonvoter " + unwantedReason(s)}, 0, 0)
		}
	}
}

// unwantedRank orders servers to shed: dead, unhealthy, doomed, surplus.
func unwantedRank(s Server) int {
	switch {
	case s.Dead:
		return 0
	case !s.Healthy:
		return 1
	case s.Doomed:
		return 2
	}
	return 3
}
