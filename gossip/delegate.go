package gossip

import (
	"time"

	"github.com/hashicorp/memberlist"
)

// delegate receives memberlist's callbacks for one Gossip. memberlist calls
// them from its own goroutines (packet and stream handlers, the probe and
// gossip tickers, suspicion timers) and, for the event and alive
// callbacks, with its node lock held: they must not block and must not
// call back into memberlist. They take only Gossip.mu.
type delegate struct{ g *Gossip }

var (
	_ memberlist.Delegate      = delegate{}
	_ memberlist.EventDelegate = delegate{}
	_ memberlist.PingDelegate  = delegate{}
	_ memberlist.AliveDelegate = delegate{}
)

// NodeMeta returns this node's encoded metadata. memberlist calls it when
// it announces this node: in New, UpdateMeta, Leave and when refuting a
// suspicion. Encode keeps it within limit (MaxMetaSize).
func (d delegate) NodeMeta(limit int) []byte {
	d.g.mu.Lock()
	defer d.g.mu.Unlock()
	if len(d.g.metaBuf) > limit {
		return nil // cannot happen: Encode caps at MaxMetaSize
	}
	return d.g.metaBuf
}

// NotifyMsg ignores user messages; lifeboat sends none.
func (delegate) NotifyMsg([]byte) {}

// GetBroadcasts returns no user broadcasts.
func (delegate) GetBroadcasts(int, int) [][]byte { return nil }

// LocalState adds nothing to push/pull syncs.
func (delegate) LocalState(bool) []byte { return nil }

// MergeRemoteState ignores remote user state.
func (delegate) MergeRemoteState([]byte, bool) {}

// NotifyJoin records a member that appeared or came back.
func (d delegate) NotifyJoin(n *memberlist.Node) { d.g.observe(n, EventJoin) }

// NotifyUpdate records a member whose metadata changed.
func (d delegate) NotifyUpdate(n *memberlist.Node) { d.g.observe(n, EventUpdate) }

// NotifyLeave records a member that is dead or left.
func (d delegate) NotifyLeave(n *memberlist.Node) { d.g.observe(n, EventFail) }

// NotifyAlive is called for every alive message memberlist accepts for
// processing, including a suspect's refutation: it clears this node's
// suspicion of n. It never rejects a node.
func (d delegate) NotifyAlive(n *memberlist.Node) error {
	d.g.setSuspect(n.Name, false)
	return nil
}

// AckPayload adds nothing to acks.
func (delegate) AckPayload() []byte { return nil }

// NotifyPingComplete is called by the probe goroutine when n acked a
// direct probe: n is reachable, so this node no longer suspects it.
func (d delegate) NotifyPingComplete(n *memberlist.Node, _ time.Duration, _ []byte) {
	d.g.setSuspect(n.Name, false)
}
