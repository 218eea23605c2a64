package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/lifeboat/lifeboat/gossip"
	"github.com/lifeboat/lifeboat/node/api"
)

func newGossipCmd() *cobra.Command {
	cf := &clientFlags{}
	cmd := &cobra.Command{Use: "gossip", Short: "The cluster's gossip encryption"}
	keys := &cobra.Command{
		Use:   "keys",
		Short: "List and rotate the gossip keys of every member (write token)",
		Long: "Gossip is encrypted with a keyring: every key decrypts, the primary encrypts.\n" +
			"Each command reaches every live member through the peer it is sent to. Rotate\n" +
			"in three steps, each finished on every member before the next:\n" +
			"  lifeboat gossip keys install --file NEW.key   every member can decrypt the new key\n" +
			"  lifeboat gossip keys use FINGERPRINT          every member encrypts with it\n" +
			"  lifeboat gossip keys remove OLD_FINGERPRINT   the old key is gone\n" +
			"Keys are named by fingerprint; no command shows a key. Each agent keeps its\n" +
			"keyring in DATA_DIR/gossip.keyring, so a restart keeps the rotation.",
	}
	cf.register(cmd)
	keys.AddCommand(newKeysListCmd(cf), newKeysInstallCmd(cf), newKeysUseCmd(cf), newKeysRemoveCmd(cf))
	cmd.AddCommand(keys)
	return cmd
}

// keyCall runs one keyring call and prints the keyring it answers; a
// partial answer is printed before its error.
func keyCall(cmd *cobra.Command, cf *clientFlags, call func(context.Context, *api.Client) (api.GossipKeys, error)) error {
	c, err := cf.client()
	if err != nil {
		return err
	}
	ctx, cancel := callCtx(cmd)
	defer cancel()
	res, err := call(ctx, c)
	if err != nil {
		return err
	}
	if cf.output == "json" {
		if perr := printJSON(cmd.OutOrStdout(), res); perr != nil {
			return perr
		}
	} else if perr := printKeys(cmd.OutOrStdout(), res); perr != nil {
		return perr
	}
	if len(res.Failed) > 0 {
		return fmt.Errorf("%d member(s) did not answer", len(res.Failed))
	}
	return nil
}

func newKeysListCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "Every key by fingerprint: how many members hold it, how many encrypt with it",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return keyCall(cmd, cf, func(ctx context.Context, c *api.Client) (api.GossipKeys, error) { return c.GossipKeys(ctx) })
		},
	}
}

func newKeysInstallCmd(cf *clientFlags) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "install [KEY]",
		Short: "Install a key on every member, for decryption (base64 KEY, or --file with a key file)",
		Long: "Install a key on every live member. Give it as --file (a file holding one base64 key,\n" +
			"such as the CA's gossip.key after `lifeboat ca gossip-key --replace`), or as KEY, which\n" +
			"your shell history and the process list may then keep.",
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := keyArg(args, file)
			if err != nil {
				return err
			}
			return keyCall(cmd, cf, func(ctx context.Context, c *api.Client) (api.GossipKeys, error) {
				return c.InstallGossipKey(ctx, key)
			})
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "a file holding the key in base64 (e.g. CA/gossip.key)")
	return cmd
}

// keyArg is the key of `install`: the argument or the file, not both.
func keyArg(args []string, file string) ([]byte, error) {
	switch {
	case len(args) == 1 && file != "":
		return nil, fmt.Errorf("%w: give the key as an argument or with --file, not both", errUsage)
	case file != "":
		key, err := gossip.ReadKeyFile(file)
		if err != nil {
			return nil, fmt.Errorf("%w: --file: %v", errUsage, err)
		}
		return key, nil
	case len(args) == 1:
		key, err := gossip.ParseKey(args[0])
		if err != nil {
			return nil, fmt.Errorf("%w: KEY: %v", errUsage, err)
		}
		return key, nil
	}
	return nil, fmt.Errorf("%w: give the key as an argument (base64) or with --file (e.g. `lifeboat ca gossip-key --replace` makes CA/gossip.key)", errUsage)
}

func newKeysUseCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "use FINGERPRINT",
		Short: "Make an installed key the one every member encrypts with",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := gossip.CheckFingerprint(args[0]); err != nil {
				return fmt.Errorf("%w: %v (see `lifeboat gossip keys list`)", errUsage, err)
			}
			return keyCall(cmd, cf, func(ctx context.Context, c *api.Client) (api.GossipKeys, error) {
				return c.UseGossipKey(ctx, args[0])
			})
		},
	}
}

func newKeysRemoveCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "remove FINGERPRINT",
		Short: "Remove a key no member encrypts with any more",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := gossip.CheckFingerprint(args[0]); err != nil {
				return fmt.Errorf("%w: %v (see `lifeboat gossip keys list`)", errUsage, err)
			}
			return keyCall(cmd, cf, func(ctx context.Context, c *api.Client) (api.GossipKeys, error) {
				return c.RemoveGossipKey(ctx, args[0])
			})
		},
	}
}

// printKeys writes the keyring as a table, then who did not answer.
func printKeys(w io.Writer, res api.GossipKeys) error {
	fmt.Fprintf(w, "answered by %s; %d members\n\n", res.Node, res.Members)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FINGERPRINT\tINSTALLED\tPRIMARY\tMISSING ON\t")
	for _, k := range res.Keys {
		missing := "-"
		if len(k.Missing) > 0 {
			missing = fmt.Sprint(k.Missing)
		}
		fmt.Fprintf(tw, "%s\t%d/%d\t%d/%d\t%s\t\n", k.Fingerprint, k.Installed, res.Members, k.Primary, res.Members, missing)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(res.Failed) > 0 {
		fmt.Fprintf(w, "\nnot answering: %s\n", failureList(res.Failed))
	}
	if len(res.Unreached) > 0 {
		fmt.Fprintf(w, "not asked (dead or left; each needs the current key to join again): %v\n", res.Unreached)
	}
	return nil
}

func failureList(failed map[string]string) string {
	parts := make([]string, 0, len(failed))
	for _, name := range slices.Sorted(maps.Keys(failed)) {
		parts = append(parts, name+": "+failed[name])
	}
	return strings.Join(parts, "; ")
}
