package node

// TEMPORARY (this refactor's merge): the evacuation orchestrator still
// calls these on *Node until it is pointed at the parts.

import (
	"context"
	"encoding/json"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/gossip"
	"github.com/lifeboat/lifeboat/internal/monotime"
	"github.com/lifeboat/lifeboat/node/api"
	"github.com/lifeboat/lifeboat/node/peer"
)

func (n *Node) apply(ctx context.Context, cmd fsm.Command) (uint64, json.RawMessage, error) {
	return n.prop.apply(ctx, cmd)
}
func (n *Node) applyLogged(ctx context.Context, cmd fsm.Command) { n.prop.applyLogged(ctx, cmd) }
func (n *Node) view() *fsm.Machine                               { return n.rep.view() }
func (n *Node) members() map[string]gossip.Member                { return n.dir.members() }
func (n *Node) leaseEnd(node string) monotime.Instant            { return n.leases.end(node) }
func (n *Node) migrateVia(ctx context.Context, req peer.MigrateRequest) (api.ActionResult, error) {
	return n.moves.migrateVia(ctx, req)
}
func (n *Node) waitRunning(ctx context.Context, id string, epoch uint64) error {
	return n.moves.waitRunning(ctx, id, epoch)
}
