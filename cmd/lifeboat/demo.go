package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat/lifeboat/node/api"
)

type demoFlags struct {
	dir      string
	duration time.Duration
	keep     bool
}

func newDemoCmd() *cobra.Command {
	df := &demoFlags{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a local 3-peer cluster in three zones on loopback, show it, stop on Ctrl-C",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runDemo(cmd.Context(), cmd.OutOrStdout(), df) },
	}
	cmd.Flags().StringVar(&df.dir, "dir", "", "where the peers keep data and logs (default: a new temporary directory)")
	cmd.Flags().DurationVar(&df.duration, "duration", 0, "stop after this long instead of waiting for Ctrl-C (0: wait)")
	cmd.Flags().BoolVar(&df.keep, "keep", false, "keep the data and logs afterwards")
	return cmd
}

// demoAgents are the demo's peers: three zones on 127.0.0.11-13.
func demoAgents() []*localAgent {
	return []*localAgent{
		{Name: "demo-1", IP: "127.0.0.11", Zone: "zone-a", Args: []string{"--bootstrap-expect", "3"}},
		{Name: "demo-2", IP: "127.0.0.12", Zone: "zone-b", Args: []string{"--bootstrap-expect", "3"}},
		{Name: "demo-3", IP: "127.0.0.13", Zone: "zone-c", Args: []string{"--bootstrap-expect", "3"}},
	}
}

func runDemo(ctx context.Context, out io.Writer, df *demoFlags) error {
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	dir := df.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "lifeboat-demo-"); err != nil {
			return err
		}
	}
	lc := &localCluster{bin: bin, dir: dir}
	defer func() {
		fmt.Fprintln(out, "stopping the peers …")
		if err := lc.stopAll(); err != nil {
			fmt.Fprintln(out, "warning:", err)
		}
		if df.keep || df.dir != "" {
			fmt.Fprintln(out, "data and logs kept in", dir)
		} else {
			os.RemoveAll(dir)
		}
		fmt.Fprintln(out, "stopped.")
	}()
	fmt.Fprintf(out, "starting 3 peers on 127.0.0.11-13 in zones a, b, c (logs in %s)\n", dir)
	for _, a := range demoAgents() {
		if err := lc.start(a, "127.0.0.11"); err != nil {
			return err
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	st, err := waitStatus(wctx, lc.agents[0].URL(), func(st api.Status) bool { return formed(st, 3, 3) })
	if err != nil {
		return fmt.Errorf("the demo cluster did not form: %w", err)
	}
	fmt.Fprintln(out)
	if err := printStatus(out, st); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nthe cluster is up: try  bin/lifeboat status --addr %s\n", lc.agents[1].URL())
	return waitDemo(ctx, out, df.duration)
}

func waitDemo(ctx context.Context, out io.Writer, d time.Duration) error {
	if d > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
		return nil
	}
	fmt.Fprintln(out, "press Ctrl-C to stop")
	<-ctx.Done()
	return nil
}

// formed reports whether st shows n alive members, one leader and the
// wanted number of voters, each voter in its own zone.
func formed(st api.Status, n, voters int) bool {
	if st.Leader == "" {
		return false
	}
	alive, v := 0, 0
	zones := map[string]bool{}
	for _, m := range st.Members {
		if m.State == api.StateAlive {
			alive++
		}
		if m.Role == api.RoleVoter {
			v++
			zones[m.Zone] = true
		}
	}
	return alive == n && v == voters && len(zones) == voters
}
