package placement

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Suffrage is a server's part in the Raft configuration.
type Suffrage int

// Suffrages. The zero value is None: a peer outside Raft.
const (
	// None is a peer that is not in the Raft configuration (a "member").
	None Suffrage = iota
	// Nonvoter replicates the log without voting (a "spare").
	Nonvoter
	// Voter replicates the log and votes (a "voter").
	Voter
)

// String returns the suffrage's name as the Raft library spells it.
func (s Suffrage) String() string {
	switch s {
	case None:
		return "none"
	case Nonvoter:
		return "nonvoter"
	case Voter:
		return "voter"
	}
	return fmt.Sprintf("Suffrage(%d)", int(s))
}

// Server is one peer as autopilot sees it. IDs are unique in one call.
type Server struct {
	// ID is the node name, which is also its Raft server ID.
	ID string
	// Zone and Cloud are the failure domains; see the package doc.
	Zone  string
	Cloud string
	// Suffrage is the server's current part in the Raft configuration.
	Suffrage Suffrage
	// Healthy reports whether the peer is alive in gossip and its lease is
	// valid. The caller debounces it (a blip must not cause churn) and, for
	// a Nonvoter, also requires it to be caught up with the log, because
	// Autopilot promotes a healthy Nonvoter at once.
	Healthy bool
	// Dead reports whether gossip says the peer is dead or has left. Dead
	// implies !Healthy. A dead server is removed rather than demoted.
	Dead bool
	// Doomed reports whether the peer has a termination notice or is being
	// drained: it must not stay a voter or the leader.
	Doomed bool
	// Leader reports whether the server is the current Raft leader (the
	// one running Autopilot). At most one server is the leader.
	Leader bool
}

// AutopilotConfig says how many voters and spares Autopilot keeps.
type AutopilotConfig struct {
	// Voters is the number of Raft voters to keep: 3 or 5.
	Voters int
	// Spares is the number of nonvoters to keep ready for promotion.
	Spares int
}

// ErrInvalidConfig is wrapped by the errors of AutopilotConfig.Validate.
var ErrInvalidConfig = errors.New("placement: invalid autopilot config")

// DefaultAutopilotConfig returns 3 voters and 2 spares.
func DefaultAutopilotConfig() AutopilotConfig {
	return AutopilotConfig{Voters: 3, Spares: 2}
}

// Validate reports a setting that Autopilot cannot work with.
func (c AutopilotConfig) Validate() error {
	if c.Voters != 3 && c.Voters != 5 {
		return fmt.Errorf("%w: voters is %d; use 3 or 5", ErrInvalidConfig, c.Voters)
	}
	if c.Spares < 0 {
		return fmt.Errorf("%w: spares is %d; use 0 or more", ErrInvalidConfig, c.Spares)
	}
	return nil
}

// ActionKind is a change of the Raft configuration or of its leader.
type ActionKind int

// Action kinds. The zero value is not an action.
const (
	// AddNonvoter adds a member to Raft as a nonvoter (raft.AddNonvoter).
	AddNonvoter ActionKind = iota + 1
	// Promote makes a nonvoter a voter (raft.AddVoter on a known server).
	Promote
	// Demote makes a voter a nonvoter (raft.DemoteVoter); it stays in Raft.
	Demote
	// Remove takes a voter or a nonvoter out of Raft (raft.RemoveServer):
	// it becomes a member. Autopilot uses Remove, not Demote, to turn a
	// spare it no longer wants into a member.
	Remove
	// TransferLeadership asks the leader (Action.ID) to hand leadership to
	// Action.Target (raft.LeadershipTransferToServer).
	TransferLeadership
)

// String returns the kind's name.
func (k ActionKind) String() string {
	switch k {
	case AddNonvoter:
		return "add-nonvoter"
	case Promote:
		return "promote"
	case Demote:
		return "demote"
	case Remove:
		return "remove"
	case TransferLeadership:
		return "transfer-leadership"
	}
	return fmt.Sprintf("ActionKind(%d)", int(k))
}

// Action is one step Autopilot asks the leader to take.
type Action struct {
	Kind ActionKind
	// ID is the server acted on; for TransferLeadership, the leader.
	ID string
	// Target is, for TransferLeadership only, the healthy ideal voter that
	// should lead next. It is empty for every other kind.
	Target string
	// Reason says why, for logs and the status API.
	Reason string
}

// String renders the action for logs.
func (a Action) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", a.Kind, a.ID)
	if a.Target != "" {
		fmt.Fprintf(&b, " to %s", a.Target)
	}
	if a.Reason != "" {
		fmt.Fprintf(&b, " (%s)", a.Reason)
	}
	return b.String()
}

// Autopilot returns the changes that move the Raft configuration towards
// VoterTarget's voters and the wanted spares, in the order the leader must
// execute them. The leader executes them one at a time and calls Autopilot
// again with the new configuration; executing the whole list in order is
// also safe. It returns nil when the configuration is already ideal or the
// config is invalid. The rules, in order:
//
//  1. If the leader is not an ideal voter (it is doomed, unhealthy, or not
//     part of the spread) and another ideal voter is a healthy voter, the
//     only action is TransferLeadership to that voter. Otherwise the leader
//     stays until a later round can move it; it is never demoted or removed.
//  2. Promote ideal voters that are nonvoters; AddNonvoter ideal voters and
//     wanted spares that are members. A member is never promoted in the
//     same round: it must catch up as a nonvoter first.
//  3. Remove dead voters, then demote the other voters that are not ideal
//     (unhealthy, then doomed, then surplus), but only while the voter
//     count stays at least the number of ideal voters.
//  4. Remove every nonvoter that is neither an ideal voter nor a wanted
//     spare: dead, doomed, unhealthy or surplus ones.
//
// No action may leave fewer healthy voters than a quorum of the voters of
// the configuration it produces; an action that would is left out, and so
// nothing is proposed for a cluster that has already lost its quorum
// (it could not commit a change anyway).
func Autopilot(servers []Server, cfg AutopilotConfig) []Action {
	if cfg.Validate() != nil {
		return nil
	}
	ss := sortedByID(servers)
	ideal := idealVoters(ss, cfg.Voters)
	if a, ok := transferLeadership(ss, ideal); ok {
		return []Action{a}
	}
	spares := idSet(spareTarget(ss, ideal, cfg.Spares))
	p := newPlan(ss, len(ideal))
	p.grow(ss, ideal, spares)
	p.shrinkVoters(ss, ideal)
	p.pruneNonvoters(ss, ideal, spares)
	return p.actions
}

// transferLeadership applies rule 1 of Autopilot.
func transferLeadership(ss []Server, ideal map[string]bool) (Action, bool) {
	i := slices.IndexFunc(ss, func(s Server) bool { return s.Leader })
	if i < 0 || ideal[ss[i].ID] {
		return Action{}, false
	}
	leader := ss[i]
	for _, s := range ss {
		if s.ID != leader.ID && ideal[s.ID] && s.Suffrage == Voter && s.Healthy {
			reason := "leader " + unwantedReason(leader)
			return Action{Kind: TransferLeadership, ID: leader.ID, Target: s.ID, Reason: reason}, true
		}
	}
	return Action{}, false
}

// unwantedReason says why a server is not an ideal voter or wanted spare.
func unwantedReason(s Server) string {
	switch {
	case s.Dead:
		return "is dead"
	case s.Doomed:
		return "is doomed"
	case !s.Healthy:
		return "is not healthy"
	}
	return "is surplus to the spread voter and spare sets"
}

// quorum is the number of votes a Raft configuration of n voters needs.
func quorum(n int) int { return n/2 + 1 }

// sortedByID returns a copy of servers sorted by ID.
func sortedByID(servers []Server) []Server {
	ss := slices.Clone(servers)
	slices.SortFunc(ss, func(a, b Server) int { return strings.Compare(a.ID, b.ID) })
	return ss
}

// idSet returns the IDs of ss as a set.
func idSet(ss []Server) map[string]bool {
	m := make(map[string]bool, len(ss))
	for _, s := range ss {
		m[s.ID] = true
	}
	return m
}
