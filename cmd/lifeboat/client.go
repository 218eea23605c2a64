package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat/lifeboat/node/api"
)

// clientFlags are shared by every command that talks to a peer.
type clientFlags struct {
	addr   string
	output string
	cred   credentials
}

// credentials are how a client verifies a peer's admin API and proves
// who it is: the cluster CA, and a bearer token or a client certificate.
type credentials struct {
	caFile, token, certFile, keyFile string
}

// credentialsFromEnv are the credentials the environment gives.
func credentialsFromEnv() credentials {
	return credentials{caFile: os.Getenv("LIFEBOAT_CA_FILE"), token: os.Getenv("LIFEBOAT_API_TOKEN"),
		certFile: os.Getenv("LIFEBOAT_CERT_FILE"), keyFile: os.Getenv("LIFEBOAT_KEY_FILE")}
}

func (cf *clientFlags) register(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	env := credentialsFromEnv()
	f.StringVar(&cf.addr, "addr", envOr("LIFEBOAT_ADDR", "https://127.0.0.1:7949"), "admin API of any peer (env LIFEBOAT_ADDR)")
	f.StringVar(&cf.cred.caFile, "ca-file", env.caFile, "the cluster CA's certificate (ca.crt), to verify the peer's HTTPS (env LIFEBOAT_CA_FILE)")
	f.StringVar(&cf.cred.token, "token", env.token, "API bearer token (env LIFEBOAT_API_TOKEN)")
	f.StringVar(&cf.cred.certFile, "cert", env.certFile, "client certificate from `lifeboat ca issue NAME --role client` (env LIFEBOAT_CERT_FILE)")
	f.StringVar(&cf.cred.keyFile, "key", env.keyFile, "its key (env LIFEBOAT_KEY_FILE)")
	f.StringVarP(&cf.output, "output", "o", "table", "table|json")
}

func (cf *clientFlags) client() (*api.Client, error) {
	if cf.output != "table" && cf.output != "json" {
		return nil, fmt.Errorf("%w: -o %q: want table or json", errUsage, cf.output)
	}
	return cf.cred.client(cf.addr)
}

// client is an admin API client of the peer at addr.
func (cr credentials) client(addr string) (*api.Client, error) {
	c, err := api.NewClient(addr, cr.token)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	tc, err := cr.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	c.HTTP = &http.Client{Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true,
		MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}}
	return c, nil
}

// tlsConfig trusts the cluster CA (or the system's roots without
// --ca-file) and presents the client certificate, if any.
func (cr credentials) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cr.caFile != "" {
		pem, err := os.ReadFile(cr.caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-file %s: no PEM certificate in it", cr.caFile)
		}
	}
	if (cr.certFile == "") != (cr.keyFile == "") {
		return nil, fmt.Errorf("--cert and --key: give both or neither")
	}
	if cr.certFile != "" {
		cert, err := tls.LoadX509KeyPair(cr.certFile, cr.keyFile)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
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
