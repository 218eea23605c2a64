package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/gossip"
	"github.com/lifeboat/lifeboat/node/api"
	"github.com/lifeboat/lifeboat/node/peer"
)

// ErrNoGossipKey means a peer on the real network has no gossip key:
// gossip is encrypted by default. It wraps ErrConfig.
var ErrNoGossipKey = fmt.Errorf("%w: no gossip key (gossip is encrypted by default): "+
	"`lifeboat ca issue NAME --ca CA --out TLS_DIR` puts the CA's gossip.key in the tls-dir, or give --gossip-key", ErrConfig)

// gossipKeys is this node's gossip keyring as memberlist holds it. Every
// change is written to DATA_DIR/gossip.keyring before it is answered, so
// an agent restarted after a rotation starts with the keys the rotation
// left (as serf's keyring file does), not the ones it was first given.
type gossipKeys struct {
	path string     // DATA_DIR/gossip.keyring
	dir  *directory // dir.g is set by startGossip
	log  *slog.Logger

	mu sync.Mutex // serializes changes, so the file matches memberlist
}

// load picks the keys gossip starts with: cfg.GossipKeys when they
// override (--gossip-key) or when no keyring was kept; else the kept
// keyring. It writes what it picked to the keyring file. A peer on the
// real network without any key is refused (ErrNoGossipKey).
func (k *gossipKeys) load(cfg Config) ([][]byte, error) {
	kept, err := gossip.LoadKeyring(k.path)
	missing := errors.Is(err, fs.ErrNotExist)
	if err != nil && !missing && !cfg.GossipKeysOverride {
		return nil, fmt.Errorf("%w: data-dir: %v (remove it to start from the tls-dir's gossip.key or --gossip-key)", ErrConfig, err)
	}
	keys, source := kept, k.path
	if cfg.GossipKeysOverride || missing {
		keys, source = cfg.GossipKeys, "configuration"
	}
	if cfg.GossipKeysOverride && len(kept) > 0 && len(keys) > 0 && !slices.EqualFunc(kept, keys, bytes.Equal) {
		k.log.Warn("the configured gossip keys replace the keyring kept in the data dir",
			"kept_primary", gossip.Fingerprint(kept[0]), "primary", gossip.Fingerprint(keys[0]))
	}
	if len(keys) == 0 {
		if cfg.Net == nil {
			return nil, ErrNoGossipKey
		}
		return nil, nil // the in-memory twin of the tests
	}
	if err := os.MkdirAll(filepath.Dir(k.path), 0o700); err != nil {
		return nil, fmt.Errorf("data-dir: %w", err)
	}
	if err := gossip.SaveKeyring(k.path, keys); err != nil {
		return nil, fmt.Errorf("data-dir: keeping the gossip keyring: %w", err)
	}
	k.log.Info("gossip is encrypted", "keys", len(keys), "primary", gossip.Fingerprint(keys[0]), "from", source)
	return keys, nil
}

// apply runs one keyring operation on this node only and answers the
// keyring after it.
func (k *gossipKeys) apply(req peer.KeyringRequest) (peer.KeyringAnswer, error) {
	g := k.dir.g
	if g == nil {
		return peer.KeyringAnswer{}, fmt.Errorf("%w: gossip has not started", api.ErrUnavailable)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.change(g, req); err != nil {
		if errors.Is(err, gossip.ErrNoEncryption) {
			return peer.KeyringAnswer{}, fmt.Errorf("%w: %v", api.ErrConflict, err)
		}
		return peer.KeyringAnswer{}, err
	}
	return keyringAnswer(g.Keys()), nil
}

// change applies req to g and keeps the result; called with mu held.
func (k *gossipKeys) change(g *gossip.Gossip, req peer.KeyringRequest) error {
	var err error
	switch req.Op {
	case peer.KeyringList:
		return nil
	case peer.KeyringInstall:
		if installed(g, req.Key) {
			return nil
		}
		if len(g.Keys()) >= gossip.MaxKeys {
			return fmt.Errorf("%w: %d gossip keys are installed, the most a keyring holds: remove one first", api.ErrConflict, gossip.MaxKeys)
		}
		err = g.InstallKey(req.Key)
	case peer.KeyringUse:
		key := findKey(g, req.Fingerprint)
		if key == nil {
			return fmt.Errorf("%w: gossip key %s is not installed here: install it first", fsm.ErrNotFound, req.Fingerprint)
		}
		err = g.UseKey(key)
	case peer.KeyringRemove:
		key := findKey(g, req.Fingerprint)
		if key == nil {
			return nil // gone already: a retried remove succeeds
		}
		if gossip.Fingerprint(g.Keys()[0]) == req.Fingerprint {
			return fmt.Errorf("%w: gossip key %s is the one this node encrypts with: use another first", api.ErrConflict, req.Fingerprint)
		}
		err = g.RemoveKey(key)
	}
	if err != nil {
		return err
	}
	if err := gossip.SaveKeyring(k.path, g.Keys()); err != nil {
		return fmt.Errorf("keeping the gossip keyring: %w", err)
	}
	k.log.Info("gossip keyring changed", "op", req.Op, "key", fingerprintOf(req), "primary", gossip.Fingerprint(g.Keys()[0]))
	return nil
}

func fingerprintOf(req peer.KeyringRequest) string {
	if req.Op == peer.KeyringInstall {
		return gossip.Fingerprint(req.Key)
	}
	return req.Fingerprint
}

func installed(g *gossip.Gossip, key []byte) bool {
	return findKey(g, gossip.Fingerprint(key)) != nil
}

// findKey is the installed key of fingerprint fp, or nil.
func findKey(g *gossip.Gossip, fp string) []byte {
	for _, k := range g.Keys() {
		if gossip.Fingerprint(k) == fp {
			return k
		}
	}
	return nil
}

func keyringAnswer(keys [][]byte) peer.KeyringAnswer {
	ans := peer.KeyringAnswer{Fingerprints: make([]string, len(keys))}
	for i, k := range keys {
		ans.Fingerprints[i] = gossip.Fingerprint(k)
	}
	if len(keys) > 0 {
		ans.Primary = ans.Fingerprints[0]
	}
	return ans
}

// Keyring serves /v1/internal/gossip/keys: this node's keyring only.
func (h peerHandler) Keyring(_ context.Context, req peer.KeyringRequest) (peer.KeyringAnswer, error) {
	return h.n.keys.apply(req)
}

var _ peer.KeyringHandler = peerHandler{}
