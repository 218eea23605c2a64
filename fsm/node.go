package fsm

import (
	"fmt"
	"time"
)

// maxYear is the last year a time.Time can be written in JSON; a lease
// ending later would make the state impossible to snapshot.
const maxYear = 9999

// node returns the named node or an error wrapping ErrNotFound.
func (s *State) node(name string) (*Node, error) {
	n, ok := s.Nodes[name]
	if !ok {
		return nil, fmt.Errorf("%w: node %q", ErrNotFound, name)
	}
	return n, nil
}

// nodeUpsert records a node's identity. A new node starts alive with the
// lease expiry the proposer stamped (if any); an existing node keeps its
// State, Deadline, LeaseExpiry and Drained, except that a lost or left
// node comes back alive (with no deadline).
func (s *State) nodeUpsert(c NodeUpsert) error {
	if c.Node.Name == "" {
		return invalid("node.name", "must not be empty")
	}
	next := cloneNode(c.Node)
	next.UpdatedAt = c.At
	old, ok := s.Nodes[next.Name]
	if !ok {
		next.State, next.Deadline, next.Drained = NodeAlive, time.Time{}, false
		s.Nodes[next.Name] = &next
		return nil
	}
	next.State, next.Deadline = old.State, old.Deadline
	next.LeaseExpiry, next.Drained = old.LeaseExpiry, old.Drained
	if next.State == NodeLost || next.State == NodeLeft {
		next.State, next.Deadline = NodeAlive, time.Time{}
	}
	*old = next
	return nil
}

// leaseRenew extends the lease of every named, known node to At + TTL and
// brings lost nodes back alive. Unknown names are skipped: the node may
// have been removed after the leader batched its renewal.
func (s *State) leaseRenew(c LeaseRenew) error {
	if c.TTL <= 0 {
		return invalid("ttl", "%s must be positive", c.TTL)
	}
	expiry := c.At.Add(c.TTL)
	if expiry.Year() > maxYear {
		return invalid("ttl", "lease would end after year %d", maxYear)
	}
	for _, name := range c.Nodes {
		n, ok := s.Nodes[name]
		if !ok {
			continue
		}
		n.LeaseExpiry = expiry
		n.Renewals++
		if n.State == NodeLost {
			n.State, n.UpdatedAt = NodeAlive, c.At
		}
	}
	return nil
}

// leaseExpire marks a node lost, unless a renewal raced ahead of the
// expiry (more Renewals than the proposer saw) or the node has left. No
// time is compared: the proposer's wall clock may have been stepped.
func (s *State) leaseExpire(c LeaseExpire) error {
	n, err := s.node(c.Node)
	if err != nil {
		return err
	}
	if n.State == NodeLeft {
		return fmt.Errorf("%w: node %q has left", ErrLeaseValid, c.Node)
	}
	if n.Renewals > c.Renewals {
		return fmt.Errorf("%w: node %q renewed %d times, after the %d the expiry saw",
			ErrLeaseValid, c.Node, n.Renewals, c.Renewals)
	}
	n.State, n.UpdatedAt = NodeLost, c.At
	return nil
}

// nodeStateChange sets a node's state. Draining sets the operator's drain
// mark; alive clears it and any deadline; doomed records the deadline.
// Lost is refused: only a lapsed lease (LeaseExpire) makes a node lost.
func (s *State) nodeStateChange(c NodeStateChange) error {
	switch c.State {
	case NodeAlive, NodeDoomed, NodeDraining, NodeLeft:
	case NodeLost:
		return invalid("state", "lost comes only from LeaseExpire")
	default:
		return invalid("state", "%q must be alive, doomed, draining or left", c.State)
	}
	n, err := s.node(c.Node)
	if err != nil {
		return err
	}
	n.State, n.UpdatedAt = c.State, c.At
	switch c.State {
	case NodeAlive:
		n.Drained, n.Deadline = false, time.Time{}
	case NodeDraining:
		n.Drained = true
	case NodeDoomed:
		n.Deadline = c.Deadline
	}
	return nil
}

// nodeRemove forgets a node. Its workloads keep their assignments: the
// orchestrator re-grants them.
func (s *State) nodeRemove(c NodeRemove) error {
	if _, err := s.node(c.Node); err != nil {
		return err
	}
	delete(s.Nodes, c.Node)
	return nil
}
