package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/lifeboat/lifeboat/node/keeper"
)

// newKeeperCmd is the fence keeper the agent starts (node/keeper): hidden,
// not for people.
func newKeeperCmd() *cobra.Command {
	var state string
	c := &cobra.Command{
		Use:    "fence-keeper --state FILE",
		Short:  "freeze the workloads when the agent's lease runs out while the agent is stopped",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			cfg := keeper.DefaultConfig(state)
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil)).With("part", "keeper")
			return keeper.Run(ctx, cfg)
		},
	}
	c.Flags().StringVar(&state, "state", "", "the state file the agent writes")
	_ = c.MarkFlagRequired("state")
	return c
}
