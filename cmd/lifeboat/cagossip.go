package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/lifeboat/lifeboat/gossip"
	"github.com/lifeboat/lifeboat/node"
	"github.com/lifeboat/lifeboat/transfer"
)

// The gossip key lives beside the CA (CA/gossip.key): `ca init` makes it,
// `ca issue` hands it to each peer with its certificate, and the agent
// reads it from its --tls-dir when no --gossip-key is given.

func newCAGossipKeyCmd() *cobra.Command {
	var dir string
	var replace bool
	cmd := &cobra.Command{
		Use:   "gossip-key",
		Short: "Make the cluster's gossip key (gossip.key, 0600) in the CA directory",
		Long: "Gossip is encrypted by default with a key kept beside the CA; `ca init` makes it and\n" +
			"`ca issue` copies it to each peer. Run this for a CA made before there was one.\n" +
			"--replace makes a new key in its place, for a rotation: install it in the running\n" +
			"cluster with `lifeboat gossip keys install --file CA/gossip.key` (see README).\n" +
			"The key is never printed; its fingerprint is.",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := os.Stat(filepath.Join(dir, transfer.CACertFile)); err != nil {
				return fmt.Errorf("%w: --dir %s holds no CA (%v): run `lifeboat ca init --dir %s` first", errUsage, dir, err, dir)
			}
			fp, err := makeGossipKey(dir, replace)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "gossip key %s in %s\n", fp, filepath.Join(dir, gossip.KeyFile))
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "lifeboat-ca", "the CA directory `ca init` made")
	cmd.Flags().BoolVar(&replace, "replace", false, "replace an existing gossip key (a rotation)")
	return cmd
}

// makeGossipKey writes a fresh key to dir/gossip.key (mode 0600) and
// returns its fingerprint. Unless replace is set an existing key stays
// and the error says so.
func makeGossipKey(dir string, replace bool) (string, error) {
	key, err := gossip.NewKey()
	if err != nil {
		return "", err
	}
	if err := gossip.WriteKeyFile(filepath.Join(dir, gossip.KeyFile), key, replace); err != nil {
		if errors.Is(err, gossip.ErrKeyExists) {
			return "", fmt.Errorf("%w: %v (use --replace to make a new one)", errUsage, err)
		}
		return "", err
	}
	return gossip.Fingerprint(key), nil
}

// refuseGossipKey is ca init's check, before it writes anything, that it
// will not overwrite a gossip key either.
func refuseGossipKey(dir string) error {
	p := filepath.Join(dir, gossip.KeyFile)
	if _, err := os.Stat(p); err == nil {
		return fmt.Errorf("ca: %s already exists: not overwriting a gossip key", p)
	}
	return nil
}

// handGossipKey copies caDir/gossip.key into out (0600) for a peer's
// certificate; a client certificate gets none. A CA made before gossip
// keys existed has none: the note says how to make one, and the
// certificate is still issued.
func handGossipKey(w io.Writer, caDir, out, role string) error {
	if role != transfer.RolePeer {
		return nil
	}
	key, err := gossip.ReadKeyFile(filepath.Join(caDir, gossip.KeyFile))
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(w, "note: %s has no %s (it was made before gossip encryption): the agent will refuse to start "+
			"without a key. Make one with `lifeboat ca gossip-key --dir %s` and issue again, or give the agent --gossip-key\n",
			caDir, gossip.KeyFile, caDir)
		return nil
	}
	if err != nil {
		return fmt.Errorf("--ca: %w", err)
	}
	return gossip.WriteKeyFile(filepath.Join(out, gossip.KeyFile), key, true)
}

// tlsDirGossipKey reads the gossip key `ca issue` put into the agent's
// --tls-dir; (nil, nil) when there is none.
func tlsDirGossipKey(tlsDir string) ([]byte, error) {
	key, err := gossip.ReadKeyFile(filepath.Join(tlsDir, gossip.KeyFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: --tls-dir: %v", errUsage, err)
	}
	return key, nil
}

// gossipKeyring picks where the agent's gossip keys come from: --gossip-key
// (which replaces the keyring the agent keeps in DATA_DIR), else that
// kept keyring (the node reads it), else TLS_DIR/gossip.key. With none the
// agent does not start: gossip is encrypted by default.
func gossipKeyring(c *node.Config, tlsDir string) error {
	if len(c.GossipKeys) > 0 {
		c.GossipKeysOverride = true
		return nil
	}
	if _, err := os.Stat(filepath.Join(c.DataDir, gossip.KeyringFile)); err == nil {
		return nil
	}
	key, err := tlsDirGossipKey(tlsDir)
	if err != nil {
		return err
	}
	if key == nil {
		return fmt.Errorf("%w: no gossip key: gossip is encrypted by default, and neither --gossip-key, %s nor %s holds one. "+
			"`lifeboat ca issue %s --ca CA --out %s` copies CA/gossip.key there (a CA made before gossip keys gets one with "+
			"`lifeboat ca gossip-key --dir CA`)", errUsage, filepath.Join(c.DataDir, gossip.KeyringFile),
			filepath.Join(tlsDir, gossip.KeyFile), c.Name, tlsDir)
	}
	c.GossipKeys = [][]byte{key}
	return nil
}

// ensureGossipKey gives a local cluster's agent the cluster's gossip key,
// made beside its CA on first use.
func ensureGossipKey(caDir, tlsDir string) error {
	if _, err := os.Stat(filepath.Join(caDir, gossip.KeyFile)); errors.Is(err, fs.ErrNotExist) {
		if _, err := makeGossipKey(caDir, false); err != nil {
			return err
		}
	}
	return handGossipKey(io.Discard, caDir, tlsDir, transfer.RolePeer)
}
