package main

import (
	"fmt"
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat/lifeboat/transfer"
)

func newCACmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Make the cluster CA and the certificates of peers and operators",
		Long: "Every peer link (Raft, the peer endpoints, the checkpoint transfer) is mutual TLS:\n" +
			"each agent presents a certificate of the cluster CA naming it and its role, and\n" +
			"refuses a peer without one; the admin API is HTTPS with the same certificate.\n" +
			"`ca init` makes the CA once; `ca issue NAME --ip IP` signs a node's certificate\n" +
			"(naming the addresses clients reach it at) into a directory the agent reads with\n" +
			"--tls-dir (default DATA_DIR/tls); `ca issue NAME --role client` signs an\n" +
			"operator's (the CLI's --cert/--key). Keep ca.key off the peers.",
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
	var ips, dns []string
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
			san, err := parseSANs(ips, dns)
			if err != nil {
				return fmt.Errorf("%w: %v", errUsage, err)
			}
			id, err := ca.IssueSANs(name, role, san, time.Now())
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
	cmd.Flags().StringSliceVar(&ips, "ip", nil, "an IP address clients reach the node's admin API at (repeat or comma-separate)")
	cmd.Flags().StringSliceVar(&dns, "dns", nil, "a DNS name clients reach the node's admin API at (the node name is always one)")
	cmd.Flags().StringVar(&role, "role", transfer.RolePeer, "peer (an agent) or client (an operator's tool; refused on peer links)")
	return cmd
}

// parseSANs reads --ip and --dns.
func parseSANs(ips, dns []string) (transfer.SANs, error) {
	san := transfer.SANs{DNS: dns}
	for _, s := range ips {
		ip := net.ParseIP(s)
		if ip == nil {
			return san, fmt.Errorf("--ip %q: not an IP address", s)
		}
		san.IPs = append(san.IPs, ip)
	}
	return san, nil
}
