package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/node/ingress"
	"github.com/lifeboat/lifeboat/node/runtime"
)

// The ingress (node/ingress) routes from this node's replica: routeTable
// is its Table, localGate its gate's admission. A move closes the
// holder's gate before the final checkpoint (closeGate), and a doomed
// host drains its fronts (serveIngress).

// ingressDrainWait bounds how long a move waits for the requests its
// gate admitted before it takes the final checkpoint anyway.
const ingressDrainWait = 5 * time.Second

// routeTable is the node's replica seen as the ingress's routes.
type routeTable struct{ rep *replica }

func (t routeTable) Changed() <-chan struct{} { return t.rep.view().Notify() }

func (t routeTable) Routes() []ingress.Route {
	v := t.rep.view()
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

// localGate admits requests at this node's gate.
type localGate struct {
	name string
	rep  *replica
	sup  *runtime.Supervisor
}

// admit admits a request: id must be held here under epoch and running;
// the answer is the service's address.
func (g localGate) admit(id string, epoch uint64) (string, error) {
	w, ok := g.rep.view().Workload(id)
	switch {
	case !ok:
		return "", fmt.Errorf("no workload %q", id)
	case w.Assignment.Epoch < epoch:
		// The front's replica saw the grant first: wait for this one.
		return "", fmt.Errorf("%w: this node's replica shows %s under epoch %d, not yet %d", ingress.ErrStarting, id, w.Assignment.Epoch, epoch)
	case w.Assignment.Holder != g.name || w.Assignment.Epoch != epoch:
		return "", fmt.Errorf("held by %s under epoch %d", w.Assignment.Holder, w.Assignment.Epoch)
	case w.Spec.Service == nil:
		return "", fmt.Errorf("%s has no service", id)
	case g.sup.PID(id) == 0:
		return "", fmt.Errorf("%w: %s does not run here yet", ingress.ErrStarting, id)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(w.Spec.Service.Port)), nil
}

// startIngress builds the ingress (run by serveIngress).
func (n *Node) startIngress() error {
	if n.cfg.IngressPort <= 0 {
		return nil
	}
	c := ingress.DefaultConfig(net.JoinHostPort(n.cfg.BindAddr, strconv.Itoa(n.cfg.IngressPort)))
	c.BindHost, c.Table = n.cfg.BindAddr, routeTable{n.rep}
	c.Local = localGate{name: n.cfg.Name, rep: n.rep, sup: n.sup}.admit
	c.Logger = n.log.With("part", "ingress")
	in, err := ingress.New(c)
	if err != nil {
		return err
	}
	n.ingress, n.moves.ingress = in, in
	return nil
}

// serveIngress serves the ingress and drains it once this host is doomed.
func serveIngress(ctx context.Context, in *ingress.Ingress, doomed func() bool, log *slog.Logger) {
	if in == nil {
		return
	}
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				log.Error("the ingress stopped", "err", err)
			}
			return
		case <-t.C:
			if doomed() {
				in.Drain()
			}
		}
	}
}

// closeGate stops this node's gate admitting id under epoch and waits
// (bounded) for the requests it admitted; reopen undoes it if the move
// fails.
func closeGate(ctx context.Context, in *ingress.Ingress, id string, epoch uint64, log *slog.Logger) (reopen func()) {
	if in == nil {
		return func() {}
	}
	wctx, cancel := context.WithTimeout(ctx, ingressDrainWait)
	defer cancel()
	if err := in.Close(wctx, id, epoch); err != nil {
		log.Warn("requests still running at the final checkpoint", "workload", id, "err", err)
	}
	return func() { in.Open(id, epoch) }
}
