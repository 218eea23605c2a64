package placement

import (
	"cmp"
	"slices"
	"strings"
)

// VoterTarget returns the IDs, sorted, of the ideal voter set: min(Voters,
// eligible) servers among the healthy, non-doomed ones, such that no zone
// holds a majority of them and no cloud does, when such a set exists.
// When none exists it returns the most spread set: the one whose largest
// zone is smallest, then whose largest cloud is smallest. (With one cloud
// every set has a cloud majority, so only zones matter; with two clouds
// and an odd voter count a cloud majority is unavoidable, and the split is
// kept as even as it can be: 2+1, 3+2.)
//
// Among equally spread sets it keeps the current leader, then the current
// voters, then the current nonvoters (already caught up), then members,
// ties broken by ID: a valid voter set is never churned for an equally
// good one. An invalid config gives nil.
func VoterTarget(servers []Server, cfg AutopilotConfig) []string {
	if cfg.Validate() != nil {
		return nil
	}
	ideal := idealVoters(sortedByID(servers), cfg.Voters)
	ids := make([]string, 0, len(ideal))
	for id := range ideal {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// idealVoters returns VoterTarget's set; ss is sorted by ID.
func idealVoters(ss []Server, voters int) map[string]bool {
	var cands []Server
	for _, s := range ss {
		if s.Healthy && !s.Doomed && !s.Dead {
			cands = append(cands, s)
		}
	}
	slices.SortStableFunc(cands, func(a, b Server) int { return voterRank(a) - voterRank(b) })
	return idSet(pickSpread(cands, min(voters, len(cands))))
}

// voterRank orders voter candidates by how little changing them costs.
func voterRank(s Server) int {
	switch {
	case s.Leader && s.Suffrage == Voter:
		return 0
	case s.Suffrage == Voter:
		return 1
	case s.Suffrage == Nonvoter:
		return 2
	}
	return 3
}

// spreadCaps bounds how many chosen servers one zone and one cloud hold.
type spreadCaps struct{ zone, cloud int }

// pickSpread returns n servers of ranked (n <= len(ranked)) under the
// tightest caps that admit n, taking them greedily in ranked order.
//
// Why greedy is exact: the sets whose zone and cloud counts stay within
// caps are the independent sets of a laminar matroid (zones nest in
// clouds), so greedy in any order reaches the largest size the caps allow,
// and greedy in preference order gives the preferred such set. The caps
// are tried from n/2 (no majority) upwards, zone cap before cloud cap: the
// first that admits n servers is the most spread set possible.
func pickSpread(ranked []Server, n int) []Server {
	for z := n / 2; z <= n; z++ {
		for c := z; c <= n; c++ {
			if got := greedyCapped(ranked, n, spreadCaps{zone: z, cloud: c}); len(got) == n {
				return got
			}
		}
	}
	return nil // only when n > len(ranked), which callers prevent
}

// greedyCapped takes up to n servers of ranked in order, skipping any that
// would push its zone or its cloud over the caps.
func greedyCapped(ranked []Server, n int, caps spreadCaps) []Server {
	zones, clouds := map[string]int{}, map[string]int{}
	var out []Server
	for _, s := range ranked {
		if len(out) == n {
			break
		}
		z := zoneKey(s.Cloud, s.Zone)
		if zones[z] >= caps.zone || clouds[s.Cloud] >= caps.cloud {
			continue
		}
		zones[z]++
		clouds[s.Cloud]++
		out = append(out, s)
	}
	return out
}

// zoneKey identifies a zone across clouds (see the package doc).
func zoneKey(cloud, zone string) string { return cloud + "/" + zone }

// spareTarget returns the wanted spares: up to n healthy, non-doomed
// servers that are not ideal voters, preferring zones the ideal voters do
// not use, then clouds they do not use, then current nonvoters (caught
// up), then voters about to be demoted (they hold the log), then members,
// ties broken by ID. ss is sorted by ID.
func spareTarget(ss []Server, ideal map[string]bool, n int) []Server {
	usedZones, usedClouds := map[string]bool{}, map[string]bool{}
	var cands []Server
	for _, s := range ss {
		if ideal[s.ID] {
			usedZones[zoneKey(s.Cloud, s.Zone)] = true
			usedClouds[s.Cloud] = true
		} else if s.Healthy && !s.Doomed && !s.Dead {
			cands = append(cands, s)
		}
	}
	key := func(s Server) [3]int {
		return [3]int{b2i(usedZones[zoneKey(s.Cloud, s.Zone)]), b2i(usedClouds[s.Cloud]), spareRank(s)}
	}
	slices.SortStableFunc(cands, func(a, b Server) int {
		ka, kb := key(a), key(b)
		return cmp.Or(slices.Compare(ka[:], kb[:]), strings.Compare(a.ID, b.ID))
	})
	return cands[:min(n, len(cands))]
}

// spareRank orders spare candidates by how caught up they are.
func spareRank(s Server) int {
	switch s.Suffrage {
	case Nonvoter:
		return 0
	case Voter:
		return 1
	}
	return 2
}

// b2i is 1 for true and 0 for false.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
