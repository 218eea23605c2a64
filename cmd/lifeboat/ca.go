package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat/lifeboat/transfer"
)

func newCACmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Make the cluster CA and the peers' certificates (mTLS on Raft and the transfer)",
		Long: "Every peer link (Raft, the QUIC checkpoint transfer) is mutual TLS: each agent\n" +
			"presents a certificate of the cluster CA naming it and its role, and refuses a\n" +
			"peer without one. `ca init` makes the CA once; `ca issue NAME` signs a node's\n" +
			"certificate into a directory the agent reads with --tls-dir (default DATA_DIR/tls).\n" +
			"Keep ca.key off the peers.",
	}
	cmd.AddCommand(newCAInitCmd(), newCAIssueCmd(), newCAGossipKeyCmd())
	return cmd
}

func newCAInitCmd() *cobra.Command {
	var dir, name string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Make a cluster CA (ca.crt, ca.key) and the gossip key (gossip.key) in --dir",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ca, err := transfer.NewCA(name, time.Now())
			if err != nil {
				return fmt.Errorf("%w: %v", errUsage, err)
			}
			if err := refuseGossipKey(dir); err != nil {
				return err
			}
			if err := ca.Save(dir); err != nil {
				return err
			}
			fp, err := makeGossipKey(dir, false)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "CA %q in %s (valid until %s); gossip key %s\n", name, dir, ca.Cert.NotAfter.Format(time.DateOnly), fp)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "lifeboat-ca", "directory for ca.crt, ca.key and gossip.key (the keys are 0600)")
	cmd.Flags().StringVar(&name, "name", "lifeboat", "the cluster's name, written into the CA's subject")
	return cmd
}

func newCAIssueCmd() *cobra.Command {
	var caDir, out, role string
	cmd := &cobra.Command{
		Use:   "issue NAME",
		Short: "Sign a certificate for node NAME into --out (ca.crt, node.crt, node.key; a peer also gets gossip.key)",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			ca, err := transfer.LoadCA(caDir)
			if err != nil {
				return fmt.Errorf("%w: --ca: %v", errUsage, err)
			}
			id, err := ca.Issue(name, role, time.Now())
			if err != nil {
				return fmt.Errorf("%w: %v", errUsage, err)
			}
			if out == "" {
				out = name
			}
			if err := id.Save(out); err != nil {
				return err
			}
			if err := handGossipKey(cmd.ErrOrStderr(), caDir, out, role); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "certificate for %s (role %s) in %s (valid until %s); start the agent with --tls-dir %s\n",
				name, role, out, id.Leaf.NotAfter.Format(time.DateOnly), out)
			return nil
		},
	}
	cmd.Flags().StringVar(&caDir, "ca", "lifeboat-ca", "the CA directory `ca init` made")
	cmd.Flags().StringVar(&out, "out", "", "directory to write into (default ./NAME)")
	cmd.Flags().StringVar(&role, "role", transfer.RolePeer, "peer (an agent) or client (an operator's tool; refused on peer links)")
	return cmd
}
