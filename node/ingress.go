package node

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/node/ingress"
)

// The ingress (node/ingress) routes from this node's replica: routes()
// is its Table, localService its gate's admission. A move closes the
// holder's gate before the final checkpoint (migrateLocal), and a doomed
// host drains its fronts.

// ingressDrainWait bounds how long a move waits for the requests its
// gate admitted before it takes the final checkpoint anyway.
const ingressDrainWait = 5 * time.Second

// routeTable is the node's replica seen as the ingress's routes.
type routeTable struct{ n *Node }

func (t routeTable) Changed() <-chan struct{} { return t.n.view().Notify() }

func (t routeTable) Routes() []ingress.Route {
	v := t.n.view()
	moving := map[string]string{} // workload -> the holder it moves off
	for _, m := range v.Migrations() {
		if m.Underway() {
			moving[m.Workload] = m.From
		}
	}
	var out []ingress.Route
	for _, w := range v.Workloads() {
		s := w.Spec.Service
		if s == nil || s.Listen <= 0 {
			continue
		}
		a := w.Assignment
		r := ingress.Route{Service: w.Spec.ID, Listen: s.Listen, Protocol: s.Protocol, Budget: time.Duration(s.SLO),
			Holder: a.Holder, Epoch: a.Epoch}
		if rec, ok := v.Node(a.Holder); ok && a.Holder != "" {
			r.Gate = net.JoinHostPort(rec.Addr, strconv.Itoa(rec.Ports.Ingress))
			r.Upstream = net.JoinHostPort(rec.Addr, strconv.Itoa(s.Port))
			// Granted counts: the new holder's gate holds what it gets
			// until the process is up, which it knows before the cluster.
			up := a.State == fsm.WorkloadRunning || a.State == fsm.WorkloadGranted
			r.Ready = up && a.Epoch > 0 && rec.Ports.Ingress > 0 && moving[w.Spec.ID] != a.Holder
		}
		out = append(out, r)
	}
	return out
}

// localService admits a request at this node's gate: id must be held
// here under epoch and running; the answer is the service's address.
func (n *Node) localService(id string, epoch uint64) (string, error) {
	w, ok := n.view().Workload(id)
	switch {
	case !ok:
		return "", fmt.Errorf("no workload %q", id)
	case w.Assignment.Epoch < epoch:
		// The front's replica saw the grant first: wait for this one.
		return "", fmt.Errorf("%w: this node's replica shows %s under epoch %d, not yet %d", ingress.ErrStarting, id, w.Assignment.Epoch, epoch)
	case w.Assignment.Holder != n.cfg.Name || w.Assignment.Epoch != epoch:
		return "", fmt.Errorf("held by %s under epoch %d", w.Assignment.Holder, w.Assignment.Epoch)
	case w.Spec.Service == nil:
		return "", fmt.Errorf("%s has no service", id)
	case n.sup.PID(id) == 0:
		return "", fmt.Errorf("%w: %s does not run here yet", ingress.ErrStarting, id)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(w.Spec.Service.Port)), nil
}

// startIngress builds the ingress (run by ingressLoop).
func (n *Node) startIngress() error {
	if n.cfg.IngressPort <= 0 {
		return nil
	}
	c := ingress.DefaultConfig(net.JoinHostPort(n.cfg.BindAddr, strconv.Itoa(n.cfg.IngressPort)))
	c.BindHost, c.Table, c.Local = n.cfg.BindAddr, routeTable{n}, n.localService
	c.Logger = n.log.With("part", "ingress")
	in, err := ingress.New(c)
	if err != nil {
		return err
	}
	n.ingress = in
	return nil
}

// ingressLoop serves the ingress and drains it once this host is doomed.
func (n *Node) ingressLoop(ctx context.Context) {
	if n.ingress == nil {
		return
	}
	done := make(chan error, 1)
	go func() { done <- n.ingress.Run(ctx) }()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				n.log.Error("the ingress stopped", "err", err)
			}
			return
		case <-t.C:
			if n.doomed() {
				n.ingress.Drain()
			}
		}
	}
}

// doomed reports whether this host got a termination notice (its own
// watcher's, or the cluster's record of one).
func (n *Node) doomed() bool {
	n.mu.Lock()
	d := !n.doomedUntil.IsZero()
	n.mu.Unlock()
	if d {
		return true
	}
	rec, ok := n.view().Node(n.cfg.Name)
	return ok && rec.State == fsm.NodeDoomed
}

// closeGate stops this node's gate admitting id under epoch and waits
// (bounded) for the requests it admitted; reopen undoes it if the move
// fails.
func (n *Node) closeGate(ctx context.Context, id string, epoch uint64) (reopen func()) {
	if n.ingress == nil {
		return func() {}
	}
	wctx, cancel := context.WithTimeout(ctx, ingressDrainWait)
	defer cancel()
	if err := n.ingress.Close(wctx, id, epoch); err != nil {
		n.log.Warn("requests still running at the final checkpoint", "workload", id, "err", err)
	}
	return func() { n.ingress.Open(id, epoch) }
}
