package cluster

import "github.com/lifeboat/lifeboat/internal/netns"

// cleanupStale removes what a crashed run with this label prefix left:
// each namespace whose creator is gone, with every process still in it.
func cleanupStale(label string) ([]string, error) {
	return netns.CleanupStale(netns.Prefix + label)
}
