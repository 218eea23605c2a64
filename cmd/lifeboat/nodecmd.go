package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat/lifeboat/node/api"
)

func newNodeCmd() *cobra.Command {
	cf := &clientFlags{}
	cmd := &cobra.Command{Use: "node", Short: "Drain and undrain nodes"}
	cf.register(cmd)
	cmd.AddCommand(newDrainCmd(cf), newUndrainCmd(cf))
	return cmd
}

// newDrainCmd is `node drain`, on its own because it alone has flags and
// follows the moves it starts.
func newDrainCmd(cf *clientFlags) *cobra.Command {
	var timeout time.Duration
	var noWait bool
	drain := &cobra.Command{
		Use:   "drain NAME",
		Short: "Move every workload off NAME; it takes no new work until undrained",
		Long: "Mark NAME draining: the leader moves its workloads away, most important first,\n" +
			"each by the same handoff as `workload migrate` (final checkpoint, delta, commit,\n" +
			"restore on the target). The command prints each move as it completes and returns\n" +
			"when NAME holds nothing (--no-wait returns at once).",
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			res, err := c.Drain(ctx, args[0])
			if err != nil {
				return err
			}
			if cf.output == "json" || noWait {
				if cf.output == "json" {
					return printJSON(cmd.OutOrStdout(), res)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "node %s is draining; %d workload(s) to move\n", res.Node, len(res.Workloads))
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "node %s is draining; moving %d workload(s)\n", res.Node, len(res.Workloads))
			return followDrain(ctx, cmd.OutOrStdout(), c, res)
		},
	}
	drain.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "how long to wait for the node to empty")
	drain.Flags().BoolVar(&noWait, "no-wait", false, "return once the drain is recorded")
	return drain
}

// newUndrainCmd is `node undrain`, apart from drain so each builder reads
// as one command.
func newUndrainCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "undrain NAME",
		Short: "Return a drained node to service",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			ctx, cancel := callCtx(cmd)
			defer cancel()
			res, err := c.Undrain(ctx, args[0])
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return printJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "node %s is back in service\n", res.Node)
			return nil
		},
	}
}

// followDrain prints each workload as it leaves the node and returns once
// the node holds none.
func followDrain(ctx context.Context, out io.Writer, c *api.Client, res api.DrainResult) error {
	left := slices.Clone(res.Workloads)
	begin := time.Now()
	for len(left) > 0 {
		ws, err := c.Workloads(ctx)
		if err != nil {
			return err
		}
		byID := map[string]api.Workload{}
		for _, w := range ws {
			byID[w.ID] = w
		}
		left = slices.DeleteFunc(left, func(id string) bool {
			w, ok := byID[id]
			switch {
			case !ok:
				fmt.Fprintf(out, "  %s was removed\n", id)
				return true
			case w.Holder != res.Node && w.State == "running":
				fmt.Fprintf(out, "  %s moved to %s (epoch %d) after %.1f s\n", id, w.Holder, w.Epoch, time.Since(begin).Seconds())
				return true
			}
			return false
		})
		if len(left) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s still holds %v: %w", res.Node, left, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
	fmt.Fprintf(out, "node %s holds no workloads (%.1f s)\n", res.Node, time.Since(begin).Seconds())
	return nil
}
