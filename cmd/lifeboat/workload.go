package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat/lifeboat/node/api"
)

func newWorkloadCmd() *cobra.Command {
	cf := &clientFlags{}
	cmd := &cobra.Command{Use: "workload", Short: "Submit, list, show and remove workloads"}
	cf.register(cmd)
	cmd.AddCommand(
		&cobra.Command{
			Use: "submit FILE", Short: "Submit a workload spec (YAML or JSON; - reads stdin)", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error { return submit(cmd, cf, args[0]) },
		},
		&cobra.Command{
			Use: "list", Short: "List the workloads", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error { return list(cmd, cf) },
		},
		&cobra.Command{
			Use: "show ID", Short: "Show one workload", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error { return show(cmd, cf, args[0]) },
		},
		&cobra.Command{
			Use: "remove ID", Short: "Remove a workload", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error { return remove(cmd, cf, args[0]) },
		},
		&cobra.Command{
			Use: "checkpoint ID", Short: "Checkpoint a workload now (it keeps running)", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error { return checkpointCmd(cmd, cf, args[0]) },
		},
		newRestartCmd(cf),
		newMigrateCmd(cf),
	)
	return cmd
}

func newRestartCmd(cf *clientFlags) *cobra.Command {
	var fromCheckpoint bool
	cmd := &cobra.Command{
		Use: "restart ID", Short: "Restart a workload on its holder", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			ctx, cancel := callCtx(cmd)
			defer cancel()
			res, err := c.Restart(ctx, args[0], fromCheckpoint)
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return printJSON(cmd.OutOrStdout(), res)
			}
			if res.Seq == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "workload %s restarted fresh (pid %d, %.1f ms)\n", res.Workload, res.PID, res.TookMS)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "workload %s restored from checkpoint #%d (pid %d, %.1f ms)\n", res.Workload, res.Seq, res.PID, res.TookMS)
			return nil
		},
	}
	cmd.Flags().BoolVar(&fromCheckpoint, "from-checkpoint", false, "restore from the latest committed checkpoint instead of starting fresh")
	return cmd
}

func newMigrateCmd(cf *clientFlags) *cobra.Command {
	var to string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "migrate ID --to NODE",
		Short: "Move a workload to another node: final checkpoint, transfer, commit, restore there",
		Long: "Move a workload to NODE. Its holder takes a final checkpoint (the process\n" +
			"stops), ships the chunks NODE lacks over QUIC, commits the checkpoint through\n" +
			"Raft, grants NODE the next epoch and waits until NODE reports it running. If\n" +
			"anything fails before the grant, the workload starts again on its holder from\n" +
			"its latest committed checkpoint.",
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return fmt.Errorf("%w: --to NODE is required", errUsage)
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			res, err := c.Migrate(ctx, args[0], to)
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return printJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "workload %s moved to %s (epoch %d) with checkpoint #%d: %d bytes, frozen %.1f ms, took %.1f ms\n",
				res.Workload, res.Holder, res.Epoch, res.Seq, res.Bytes, res.FreezeMS, res.TookMS)
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the node to move the workload to")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for the move")
	return cmd
}

func checkpointCmd(cmd *cobra.Command, cf *clientFlags, id string) error {
	c, err := cf.client()
	if err != nil {
		return err
	}
	ctx, cancel := callCtx(cmd)
	defer cancel()
	res, err := c.Checkpoint(ctx, id)
	if err != nil {
		return err
	}
	if cf.output == "json" {
		return printJSON(cmd.OutOrStdout(), res)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "checkpoint #%d of %s (epoch %d): %d bytes, frozen %.1f ms, took %.1f ms\n",
		res.Seq, res.Workload, res.Epoch, res.Bytes, res.FreezeMS, res.TookMS)
	return nil
}

func submit(cmd *cobra.Command, cf *clientFlags, file string) error {
	c, err := cf.client()
	if err != nil {
		return err
	}
	var raw []byte
	if file == "-" {
		raw, err = io.ReadAll(cmd.InOrStdin())
	} else {
		raw, err = os.ReadFile(file)
	}
	if err != nil {
		return fmt.Errorf("%w: reading the spec: %v", errUsage, err)
	}
	// Check locally first, so a bad spec fails with the same message
	// without a round trip (the server checks again).
	ctype := "application/yaml"
	if strings.EqualFold(filepath.Ext(file), ".json") {
		ctype = "application/json"
	}
	if _, err := api.DecodeSpec(strings.NewReader(string(raw)), ctype); err != nil {
		return fmt.Errorf("%w: %s: %v", errUsage, file, err)
	}
	ctx, cancel := callCtx(cmd)
	defer cancel()
	w, err := c.Submit(ctx, raw, ctype)
	if err != nil {
		return err
	}
	if cf.output == "json" {
		return printJSON(cmd.OutOrStdout(), w)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "workload %s submitted (%s)\n", w.ID, w.State)
	return nil
}

func list(cmd *cobra.Command, cf *clientFlags) error {
	c, err := cf.client()
	if err != nil {
		return err
	}
	ctx, cancel := callCtx(cmd)
	defer cancel()
	ws, err := c.Workloads(ctx)
	if err != nil {
		return err
	}
	if cf.output == "json" {
		return printJSON(cmd.OutOrStdout(), ws)
	}
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tHOLDER\tEPOCH\tSTATE\tSTANDBYS\tMODE\tCHECKPOINT\t")
	for _, w := range ws {
		ckpt := "-"
		if w.Checkpoint != nil {
			ckpt = fmt.Sprintf("#%d (%d B)", w.Checkpoint.Seq, w.Checkpoint.Bytes)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t\n", w.ID, dash(w.Holder), w.Epoch, w.State,
			dash(strings.Join(w.Standbys, ",")), w.Spec.Checkpoint.Mode, ckpt)
	}
	return tw.Flush()
}

func show(cmd *cobra.Command, cf *clientFlags, id string) error {
	c, err := cf.client()
	if err != nil {
		return err
	}
	ctx, cancel := callCtx(cmd)
	defer cancel()
	w, err := c.Workload(ctx, id)
	if err != nil {
		return err
	}
	return printJSON(cmd.OutOrStdout(), w)
}

func remove(cmd *cobra.Command, cf *clientFlags, id string) error {
	c, err := cf.client()
	if err != nil {
		return err
	}
	ctx, cancel := callCtx(cmd)
	defer cancel()
	if err := c.Remove(ctx, id); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "workload %s removed\n", id)
	return nil
}
