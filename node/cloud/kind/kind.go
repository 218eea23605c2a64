// Package kind names the notices a cloud gives an instance. It is the one
// definition shared by the watchers (package cloud, which read them from
// the metadata) and the emulators (package emulate, which serve them and
// take them in POST /lifeboat/notice). It is a leaf: cloud's tests use the
// emulators, so emulate cannot import cloud without a cycle.
package kind

const (
	// Preempt: the cloud is taking the capacity back (spot/preemptible):
	// AWS spot/instance-action, GCP instance/preempted, Azure Preempt.
	Preempt = "preempt"
	// Rebalance: AWS recommends moving off early; the host is not yet
	// doomed.
	Rebalance = "rebalance"
	// Maintenance: the host will be rebooted, redeployed, frozen or
	// migrated: an AWS system-reboot event, GCP
	// TERMINATE_ON_HOST_MAINTENANCE, an Azure Reboot.
	Maintenance = "maintenance"
	// Terminate: the instance is being terminated (scale-in): AWS Auto
	// Scaling's target lifecycle state Terminated, an Azure Terminate.
	Terminate = "terminate"
)

// All lists every kind, in the order the docs give them. It is a new
// slice on every call.
func All() []string { return []string{Preempt, Rebalance, Maintenance, Terminate} }
