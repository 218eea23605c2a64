package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/lifeboat/lifeboat/node/host"
)

// newDoctorCmd is `lifeboat doctor`: what this host can do. It is a
// report, so failed checks still exit 0; only bad usage exits 2.
func newDoctorCmd() *cobra.Command {
	var output, criuPath string
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Report what this host can do: CRIU, userfaultfd, namespaces, nftables",
		Long: "Probe this host the way the agent does at start and print one line per check\n" +
			"and the checkpoint modes (app, none, criu) it can serve. Run it as root:\n" +
			"criu mode, namespaces and nftables need root.",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("%w: -o %q: want table or json", errUsage, output)
			}
			cfg := host.DefaultConfig()
			if cmd.Flags().Changed("criu") {
				cfg.CRIUPath = criuPath
			}
			return printDoctor(cmd.OutOrStdout(), host.Probe(cmd.Context(), cfg), output)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&output, "output", "o", "table", "table|json")
	f.StringVar(&criuPath, "criu", "", "criu binary to probe (default "+host.InstalledCRIU+", else criu on PATH)")
	return cmd
}

// usageArgs marks argument errors as usage errors (exit status 2).
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		return nil
	}
}

// printDoctor writes r as a table (✓/✗, name, detail, then the modes) or
// as JSON.
func printDoctor(w io.Writer, r host.Report, output string) error {
	if output == "json" {
		return printJSON(w, r)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range r.Checks {
		mark := "✗"
		if c.OK {
			mark = "✓"
		}
		fmt.Fprintf(tw, "%s %s\t%s\n", mark, c.Name, c.Detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "checkpoint modes this host can serve: %s\n", strings.Join(r.Modes, ", "))
	return err
}
