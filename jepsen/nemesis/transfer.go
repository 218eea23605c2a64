package nemesis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/lifeboat/lifeboat/jepsen/cluster"
)

// TransferPort is the agents' default --transfer-port.
const TransferPort = 7948

// TransferCut cuts the checkpoint transfer port (7948: QUIC on UDP, TLS on
// TCP) on the holder of one of the workloads (a random one), as source
// and as destination port, so that a transfer from or to it stalls. To
// land mid-transfer, it first asks the holder for a checkpoint (POST
// /v1/workloads/ID/checkpoint, from the harness) and cuts 0-1 s later;
// heal removes the cut and ends that request.
func TransferCut(workloads ...string) Nemesis { return transferCut{workloads} }

type transferCut struct{ workloads []string }

func (transferCut) Kind() string  { return "transfer-cut" }
func (transferCut) Class() string { return ClassNet }

func (n transferCut) Inject(ctx context.Context, c *cluster.Cluster, r *rand.Rand) (*Fault, error) {
	w, h, err := holderOf(ctx, c, r, n.Kind(), n.workloads)
	if err != nil {
		return nil, err
	}
	ckCtx, stop := context.WithTimeout(context.Background(), 2*time.Minute)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // owned by the fault: its heal (or a failed inject) stops it
		defer wg.Done()
		_, _ = h.Client().Checkpoint(ckCtx, w)
	}()
	end := func() { stop(); wg.Wait() }
	lag := time.Duration(r.Int64N(int64(time.Second)))
	select {
	case <-time.After(lag):
	case <-ctx.Done():
		end()
		return nil, ctx.Err()
	}
	rules := []string{
		fmt.Sprintf("meta l4proto { tcp, udp } th dport %d drop", TransferPort),
		fmt.Sprintf("meta l4proto { tcp, udp } th sport %d drop", TransferPort),
	}
	detail := fmt.Sprintf("port %d cut on %s (holder of %s) %v after a checkpoint request", TransferPort, h.Name, w, lag.Round(time.Millisecond))
	f, err := netFault(c, n.Kind(), detail, map[string][]string{h.Name: rules})
	if err != nil {
		end()
		return nil, err
	}
	del := f.heal
	f.heal = func(ctx context.Context) error {
		err := del(ctx)
		end()
		return err
	}
	return f, nil
}
