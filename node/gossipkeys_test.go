package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/gossip"
	"github.com/lifeboat/lifeboat/node/api"
	"github.com/lifeboat/lifeboat/node/internal/memnet"
)

func randKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestGossipKeysLoadPrecedence(t *testing.T) {
	seed, kept := randKey(t), [][]byte{randKey(t), randKey(t)}
	newKeys := func(t *testing.T) *gossipKeys {
		return &gossipKeys{path: filepath.Join(t.TempDir(), gossip.KeyringFile), dir: &directory{}, log: slog.New(slog.DiscardHandler)}
	}
	real := Config{GossipKeys: [][]byte{seed}}

	t.Run("first start keeps the seed", func(t *testing.T) {
		k := newKeys(t)
		got, err := k.load(real)
		if err != nil || !reflect.DeepEqual(got, [][]byte{seed}) {
			t.Fatalf("load = %x, %v", got, err)
		}
		if onDisk, err := gossip.LoadKeyring(k.path); err != nil || !reflect.DeepEqual(onDisk, got) {
			t.Fatalf("kept %x, %v", onDisk, err)
		}
	})
	t.Run("the kept keyring wins over the seed", func(t *testing.T) {
		k := newKeys(t)
		if err := gossip.SaveKeyring(k.path, kept); err != nil {
			t.Fatal(err)
		}
		if got, err := k.load(real); err != nil || !reflect.DeepEqual(got, kept) {
			t.Fatalf("load = %x, %v; want the kept keyring", got, err)
		}
	})
	t.Run("an override replaces the kept keyring", func(t *testing.T) {
		k := newKeys(t)
		if err := gossip.SaveKeyring(k.path, kept); err != nil {
			t.Fatal(err)
		}
		cfg := real
		cfg.GossipKeysOverride = true
		if got, err := k.load(cfg); err != nil || !reflect.DeepEqual(got, [][]byte{seed}) {
			t.Fatalf("load = %x, %v; want the override", got, err)
		}
		if onDisk, _ := gossip.LoadKeyring(k.path); !reflect.DeepEqual(onDisk, [][]byte{seed}) {
			t.Fatalf("kept %x after an override", onDisk)
		}
	})
	t.Run("a damaged keyring is refused unless overridden", func(t *testing.T) {
		k := newKeys(t)
		if err := os.WriteFile(k.path, []byte("[\"nope\"]"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := k.load(real); !errors.Is(err, ErrConfig) {
			t.Fatalf("load = %v, want ErrConfig", err)
		}
		cfg := real
		cfg.GossipKeysOverride = true
		if _, err := k.load(cfg); err != nil {
			t.Fatalf("load with an override: %v", err)
		}
	})
	t.Run("no key on the real network is refused", func(t *testing.T) {
		k := newKeys(t)
		if _, err := k.load(Config{}); !errors.Is(err, ErrNoGossipKey) {
			t.Fatalf("load = %v, want ErrNoGossipKey", err)
		}
		if got, err := k.load(Config{Net: memnet.New()}); err != nil || got != nil {
			t.Fatalf("in memory: load = %x, %v; want no encryption", got, err)
		}
		if _, err := os.Stat(k.path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a keyless load wrote %s", k.path)
		}
	})
}

// TestGossipKeyRotationAcrossTheCluster rotates the key through the
// Backend of one peer, step by step, checks each refusal of a step out of
// order, and restarts a peer whose configuration still names the old key.
func TestGossipKeyRotationAcrossTheCluster(t *testing.T) {
	oldKey, newKey := randKey(t), randKey(t)
	oldFP, newFP := gossip.Fingerprint(oldKey), gossip.Fingerprint(newKey)
	tc := newTestClusterWith(t, 0, func(c *Config) { c.GossipKeys = [][]byte{oldKey} },
		peerSpec{"a1", "za"}, peerSpec{"b1", "zb"}, peerSpec{"c1", "zc"})
	eventually(t, 20*time.Second, "formed", func() error { return shape(tc.status("a1"), 3, 3, 0) })
	ctx := context.Background()
	a := tc.node("a1")

	st, err := a.GossipKeys(ctx)
	if err != nil || st.Members != 3 || len(st.Keys) != 1 || !reflect.DeepEqual(st.Keys[0], api.GossipKey{Fingerprint: oldFP, Installed: 3, Primary: 3}) {
		t.Fatalf("before: %+v, %v", st, err)
	}
	if _, err := a.UseGossipKey(ctx, newFP); !errors.Is(err, fsm.ErrNotFound) {
		t.Errorf("use before install = %v, want ErrNotFound", err)
	}
	if st, err = a.InstallGossipKey(ctx, newKey); err != nil || len(st.Keys) != 2 || st.Keys[1].Installed != 3 {
		t.Fatalf("install: %+v, %v", st, err)
	}
	if _, err := a.RemoveGossipKey(ctx, oldFP); !errors.Is(err, api.ErrConflict) {
		t.Errorf("removing the primary key = %v, want ErrConflict", err)
	}
	if st, err = tc.node("b1").UseGossipKey(ctx, newFP); err != nil || st.Keys[0].Fingerprint != newFP || st.Keys[0].Primary != 3 {
		t.Fatalf("use: %+v, %v", st, err)
	}
	if st, err = tc.node("c1").RemoveGossipKey(ctx, oldFP); err != nil || len(st.Keys) != 1 || st.Keys[0].Fingerprint != newFP {
		t.Fatalf("remove: %+v, %v", st, err)
	}
	if _, err := a.RemoveGossipKey(ctx, oldFP); err != nil {
		t.Errorf("a repeated remove = %v, want success", err)
	}
	for name, cfg := range tc.cfgs {
		kept, err := gossip.LoadKeyring(filepath.Join(cfg.DataDir, gossip.KeyringFile))
		if err != nil || !reflect.DeepEqual(kept, [][]byte{newKey}) {
			t.Errorf("%s keeps %x, %v; want only the new key", name, kept, err)
		}
	}

	tc.kill("c1") // its configuration still names only the old key
	tc.start("c1")
	eventually(t, 20*time.Second, "c1 back with the kept keyring", func() error {
		st, err := a.GossipKeys(ctx)
		if err != nil || st.Members != 3 || len(st.Keys) != 1 || st.Keys[0].Installed != 3 {
			return fmt.Errorf("%d members answered, keys %+v, failed: %s (%v)", st.Members, st.Keys, failures(st.Failed), err)
		}
		return shape(tc.status("c1"), 3, 3, 0)
	})
}
