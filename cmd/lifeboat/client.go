package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/lifeboat/lifeboat/node/api"
)

// clientFlags are shared by every command that talks to a peer.
type clientFlags struct {
	addr   string
	token  string
	output string
}

func (cf *clientFlags) register(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&cf.addr, "addr", envOr("LIFEBOAT_ADDR", "http://127.0.0.1:7949"), "admin API of any peer (env LIFEBOAT_ADDR)")
	f.StringVar(&cf.token, "token", os.Getenv("LIFEBOAT_API_TOKEN"), "API bearer token (env LIFEBOAT_API_TOKEN)")
	f.StringVarP(&cf.output, "output", "o", "table", "table|json")
}

func (cf *clientFlags) client() (*api.Client, error) {
	if cf.output != "table" && cf.output != "json" {
		return nil, fmt.Errorf("%w: -o %q: want table or json", errUsage, cf.output)
	}
	c, err := api.NewClient(cf.addr, cf.token)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return c, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func callCtx(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), api.DefaultTimeout)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newStatusCmd() *cobra.Command {
	cf := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the cluster as a peer sees it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			ctx, cancel := callCtx(cmd)
			defer cancel()
			st, err := c.Status(ctx)
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return printJSON(cmd.OutOrStdout(), st)
			}
			return printStatus(cmd.OutOrStdout(), st)
		},
	}
	cf.register(cmd)
	return cmd
}

// printStatus writes the status as a table.
func printStatus(w io.Writer, st api.Status) error {
	leader := st.Leader
	if leader == "" {
		leader = "(none)"
	}
	fmt.Fprintf(w, "answered by %s; leader %s; %d members\n\n", st.Node, leader, len(st.Members))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tSTATE\tCLOUD\tREGION\tZONE\tADDRESS\t")
	for _, m := range st.Members {
		role := m.Role
		if m.Leader {
			role += " (leader)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", m.Name, role, m.State, dash(m.Cloud), dash(m.Region), dash(m.Zone), dash(m.Addr))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
