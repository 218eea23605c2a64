package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrNoAnswer is returned by Leader and Holder when no reachable host
// named one.
var ErrNoAnswer = errors.New("cluster: no host named one")

// askTimeout bounds each host's answer in Leader and Holder.
const askTimeout = 2 * time.Second

// Leader is the host most running agents name as the Raft leader (a
// cut-off old leader may still name itself; the majority wins).
func (c *Cluster) Leader(ctx context.Context) (*Host, error) {
	return c.vote(ctx, "leader", func(ctx context.Context, h *Host) (string, error) {
		st, err := h.Client().Status(ctx)
		return st.Leader, err
	})
}

// Holder is the host most running agents name as the holder of workload.
func (c *Cluster) Holder(ctx context.Context, workload string) (*Host, error) {
	return c.vote(ctx, "holder of "+workload, func(ctx context.Context, h *Host) (string, error) {
		w, err := h.Client().Workload(ctx, workload)
		return w.Holder, err
	})
}

// vote asks every running, unpaused host at once (each within askTimeout)
// and returns the host named most often.
func (c *Cluster) vote(ctx context.Context, what string, ask func(context.Context, *Host) (string, error)) (*Host, error) {
	var mu sync.Mutex // guards votes and errs
	votes := map[string]int{}
	var errs []error
	var wg sync.WaitGroup
	for _, h := range c.Hosts {
		if !h.Running() || h.Paused() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			actx, cancel := context.WithTimeout(ctx, askTimeout)
			defer cancel()
			name, err := ask(actx, h)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", h.Name, err))
			} else if name != "" {
				votes[name]++
			}
		}()
	}
	wg.Wait()
	best, n := "", 0
	for name, v := range votes {
		if v > n || (v == n && name < best) {
			best, n = name, v
		}
	}
	if h := c.Host(best); h != nil {
		return h, nil
	}
	return nil, fmt.Errorf("%w as %s: %w", ErrNoAnswer, what, errors.Join(errs...))
}
