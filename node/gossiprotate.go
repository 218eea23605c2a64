package node

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/gossip"
	"github.com/lifeboat/lifeboat/node/api"
	"github.com/lifeboat/lifeboat/node/peer"
)

// A rotation reaches every member the way serf's key manager does: the
// node that takes the admin call sends the step to each live member
// (itself included) and gathers their keyrings. The key never enters
// Raft: it would stay in the log and in every snapshot, and go wherever
// they go. Use and remove first check every member's keyring, so that no
// member encrypts with a key another lacks.

var _ api.KeyringBackend = (*Node)(nil)

// keyFanout bounds the members asked at once.
const keyFanout = 16

// memberKeys is what one round of asking gave.
type memberKeys struct {
	answers   map[string]peer.KeyringAnswer
	failed    map[string]string
	unreached []string
}

// GossipKeys lists every live member's keys.
func (n *Node) GossipKeys(ctx context.Context) (api.GossipKeys, error) {
	return n.keyStatus(n.askMembers(ctx, peer.KeyringRequest{Op: peer.KeyringList})), nil
}

// InstallGossipKey installs key on every live member.
func (n *Node) InstallGossipKey(ctx context.Context, key []byte) (api.GossipKeys, error) {
	return n.keyStep(ctx, peer.KeyringRequest{Op: peer.KeyringInstall, Key: key}, "installed")
}

// UseGossipKey makes fp every live member's primary key, once each holds it.
func (n *Node) UseGossipKey(ctx context.Context, fp string) (api.GossipKeys, error) {
	before := n.keyStatus(n.askMembers(ctx, peer.KeyringRequest{Op: peer.KeyringList}))
	if err := unanswered(before, "use"); err != nil {
		return before, err
	}
	k, ok := findStatus(before, fp)
	if !ok {
		return before, fmt.Errorf("%w: no member holds gossip key %s: install it first", fsm.ErrNotFound, fp)
	}
	if len(k.Missing) > 0 {
		return before, fmt.Errorf("%w: gossip key %s is not installed on %s: install it on every member first",
			api.ErrConflict, fp, strings.Join(k.Missing, ", "))
	}
	return n.keyStep(ctx, peer.KeyringRequest{Op: peer.KeyringUse, Fingerprint: fp}, "made primary")
}

// RemoveGossipKey removes fp from every live member, once none encrypts
// with it.
func (n *Node) RemoveGossipKey(ctx context.Context, fp string) (api.GossipKeys, error) {
	before := n.keyStatus(n.askMembers(ctx, peer.KeyringRequest{Op: peer.KeyringList}))
	if err := unanswered(before, "remove"); err != nil {
		return before, err
	}
	if k, ok := findStatus(before, fp); ok && k.Primary > 0 {
		return before, fmt.Errorf("%w: gossip key %s is still the primary key of %d member(s): use another key first",
			api.ErrConflict, fp, k.Primary)
	}
	return n.keyStep(ctx, peer.KeyringRequest{Op: peer.KeyringRemove, Fingerprint: fp}, "removed")
}

// keyStep sends req to every live member; a member that did not take it
// makes the answer an error that names it.
func (n *Node) keyStep(ctx context.Context, req peer.KeyringRequest, done string) (api.GossipKeys, error) {
	st := n.keyStatus(n.askMembers(ctx, req))
	if len(st.Failed) > 0 {
		return st, fmt.Errorf("%w: gossip key %s on %d of %d members; not on %s: retry once they answer",
			api.ErrUnavailable, done, st.Members, st.Members+len(st.Failed), failures(st.Failed))
	}
	return st, nil
}

// unanswered refuses a step that cannot first see every live member.
func unanswered(st api.GossipKeys, step string) error {
	if len(st.Failed) == 0 {
		return nil
	}
	return fmt.Errorf("%w: cannot %s a gossip key before every live member answers; not answering: %s",
		api.ErrUnavailable, step, failures(st.Failed))
}

func failures(failed map[string]string) string {
	parts := make([]string, 0, len(failed))
	for _, name := range slices.Sorted(maps.Keys(failed)) {
		parts = append(parts, name+" ("+failed[name]+")")
	}
	return strings.Join(parts, "; ")
}

func findStatus(st api.GossipKeys, fp string) (api.GossipKey, bool) {
	for _, k := range st.Keys {
		if k.Fingerprint == fp {
			return k, true
		}
	}
	return api.GossipKey{}, false
}

// askMembers sends req to every member gossip lists alive or suspect
// that is a peer (recorded once it proved its certificate: prove.go),
// keyFanout at a time, and to this node directly; dead and left members
// are not asked, and a host in the pool that never proved a peer
// certificate is neither asked nor waited for.
func (n *Node) askMembers(ctx context.Context, req peer.KeyringRequest) memberKeys {
	res := memberKeys{answers: map[string]peer.KeyringAnswer{}, failed: map[string]string{}}
	var mu sync.Mutex // guards res's maps
	var wg sync.WaitGroup
	sem := make(chan struct{}, keyFanout)
	for _, m := range n.dir.members() {
		if _, peer := n.rep.view().Node(m.Name); !peer && m.Name != n.cfg.Name {
			continue
		}
		if m.State != gossip.MemberAlive && m.State != gossip.MemberSuspect {
			res.unreached = append(res.unreached, m.Name)
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ans, err := n.askMember(ctx, m, req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.failed[m.Name] = err.Error()
				return
			}
			res.answers[m.Name] = ans
		}()
	}
	wg.Wait()
	sort.Strings(res.unreached)
	return res
}

func (n *Node) askMember(ctx context.Context, m gossip.Member, req peer.KeyringRequest) (peer.KeyringAnswer, error) {
	if m.Name == n.cfg.Name {
		return n.keys.apply(req)
	}
	addr := metaAddr(m, raftPort)
	if addr == "" {
		return peer.KeyringAnswer{}, fmt.Errorf("it gossips no peer address")
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ForwardTimeout)
	defer cancel()
	return n.calls.Keyring(ctx, addr, req)
}

// keyStatus sums the members' keyrings by fingerprint, the keys most
// members encrypt with first.
func (n *Node) keyStatus(mk memberKeys) api.GossipKeys {
	st := api.GossipKeys{Node: n.cfg.Name, Members: len(mk.answers), Keys: []api.GossipKey{}, Unreached: mk.unreached}
	if len(mk.failed) > 0 {
		st.Failed = mk.failed
	}
	byFP := map[string]*api.GossipKey{}
	for _, ans := range mk.answers {
		for _, fp := range ans.Fingerprints {
			if byFP[fp] == nil {
				byFP[fp] = &api.GossipKey{Fingerprint: fp}
			}
			byFP[fp].Installed++
			if fp == ans.Primary {
				byFP[fp].Primary++
			}
		}
	}
	for _, k := range byFP {
		for _, name := range slices.Sorted(maps.Keys(mk.answers)) {
			if !slices.Contains(mk.answers[name].Fingerprints, k.Fingerprint) {
				k.Missing = append(k.Missing, name)
			}
		}
		st.Keys = append(st.Keys, *k)
	}
	sort.Slice(st.Keys, func(i, j int) bool {
		a, b := st.Keys[i], st.Keys[j]
		if a.Primary != b.Primary {
			return a.Primary > b.Primary
		}
		return a.Fingerprint < b.Fingerprint
	})
	return st
}
