// Package placement makes lifeboat's pure placement decisions: which peers
// are Raft voters and spares (Autopilot, VoterTarget) and which peers hold
// and stand by for a workload (ChooseHolder, ChooseStandbys, Fits), and
// how the leader evacuates a node: the order of the moves against the
// deadline (PlanEvacuation), their targets (EvacuationTarget), what to
// preempt for room (PreemptionPlan) and how long a move takes (Throughput).
//
// It is pure and deterministic: inputs in, decisions out. There is no
// clock, network, disk or randomness inside, and every choice is made over
// sorted inputs with ties broken by name, so the same inputs in any order
// give the same decisions on every peer. It imports nothing of lifeboat;
// the node package translates its own state into these types.
//
// Failure domains: a zone is identified by the pair (Cloud, Zone), so zone
// "a" of one cloud and zone "a" of another are different zones. Zones nest
// inside clouds, which is what makes the spread rules below exact.
package placement
