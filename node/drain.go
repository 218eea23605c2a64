package node

import (
	"context"
	"fmt"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/node/api"
)

// Drain marks a node draining: it takes no new work, and the leader moves
// its workloads away.
func (n *Node) Drain(ctx context.Context, name string) (api.DrainResult, error) {
	return n.setDrain(ctx, name, fsm.NodeDraining)
}

// Undrain returns a drained node to service.
func (n *Node) Undrain(ctx context.Context, name string) (api.DrainResult, error) {
	return n.setDrain(ctx, name, fsm.NodeAlive)
}

func (n *Node) setDrain(ctx context.Context, name string, state fsm.NodeState) (api.DrainResult, error) {
	rec, ok := n.rep.view().Node(name)
	if !ok {
		return api.DrainResult{}, fmt.Errorf("%w: no node %q", fsm.ErrNotFound, name)
	}
	if state == fsm.NodeAlive && rec.State != fsm.NodeDraining {
		return api.DrainResult{}, fmt.Errorf("%w: node %s is %s, not draining", api.ErrConflict, name, rec.State)
	}
	if _, _, err := n.prop.apply(ctx, fsm.NodeStateChange{Node: name, State: state, At: n.now()}); err != nil {
		return api.DrainResult{}, err
	}
	res := api.DrainResult{Node: name, State: string(state)}
	for _, w := range n.rep.view().Workloads() {
		if w.Assignment.Holder == name {
			res.Workloads = append(res.Workloads, w.Spec.ID)
		}
	}
	return res, nil
}
