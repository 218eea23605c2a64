package gossip

import (
	"bytes"
	"crypto/rand"
	"errors"
	"reflect"
	"testing"
	"time"
)

func newKey(t *testing.T, n int) []byte {
	t.Helper()
	k := make([]byte, n)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// netNode starts a node on the real network: 127.0.0.1, a kernel-chosen
// port (memberlist binds TCP and UDP to the same port, retrying on
// collision), encrypted with keys.
func netNode(t *testing.T, log *testLog, name string, i int, keys ...[]byte) *testNode {
	t.Helper()
	cfg := DefaultTestConfig()
	cfg.Name, cfg.Keys, cfg.Logger = name, keys, log.logger()
	return startNode(t, cfg, nodeMeta(i))
}

// seesAlive reports whether a and b both list each other alive.
func seesAlive(a, b *testNode) bool {
	return hasState(a.Gossip, b.LocalName(), MemberAlive) && hasState(b.Gossip, a.LocalName(), MemberAlive)
}

func TestEncryptedRealNetworkAndKeyRotation(t *testing.T) {
	log := newTestLog(t)
	oldKey, rotated := newKey(t, 32), newKey(t, 16)
	a := netNode(t, log, "a", 0, oldKey)
	b := netNode(t, log, "b", 1, oldKey)
	if _, err := b.Join([]string{a.LocalAddr()}); err != nil {
		t.Fatalf("Join with the same key: %v", err)
	}
	waitFor(t, 5*time.Second, "a and b see each other", func() bool { return seesAlive(a, b) })

	stranger := netNode(t, log, "stranger", 2, newKey(t, 32))
	if _, err := stranger.Join([]string{a.LocalAddr()}); err == nil {
		t.Error("Join with a different key succeeded")
	}
	plain := netNode(t, log, "plain", 5)
	if _, err := plain.Join([]string{a.LocalAddr()}); err == nil {
		t.Error("Join without encryption succeeded")
	}
	for _, name := range []string{"stranger", "plain"} {
		if _, ok := memberOf(a.Gossip, name); ok {
			t.Errorf("a lists %s, which has no valid key", name)
		}
	}

	rotate(t, []*testNode{a, b}, oldKey, rotated)
	m := nodeMeta(0)
	m.State = StateDraining
	if err := a.UpdateMeta(m); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "b sees a's update after rotation", func() bool {
		got, _ := memberOf(b.Gossip, "a")
		return got.Meta.State == StateDraining && got.State == MemberAlive
	})

	stale := netNode(t, log, "stale", 3, oldKey)
	if _, err := stale.Join([]string{a.LocalAddr()}); err == nil {
		t.Error("Join with the removed key succeeded")
	}
	fresh := netNode(t, log, "fresh", 4, rotated)
	if _, err := fresh.Join([]string{a.LocalAddr()}); err != nil {
		t.Errorf("Join with the new key: %v", err)
	}
	waitFor(t, 5*time.Second, "b sees fresh", func() bool { return hasState(b.Gossip, "fresh", MemberAlive) })
}

// rotate runs the documented rotation on every node, step by step.
func rotate(t *testing.T, nodes []*testNode, oldKey, newKey []byte) {
	t.Helper()
	for _, step := range []struct {
		name string
		do   func(*testNode) error
	}{
		{"install", func(n *testNode) error { return n.InstallKey(newKey) }},
		{"use", func(n *testNode) error { return n.UseKey(newKey) }},
		{"remove", func(n *testNode) error { return n.RemoveKey(oldKey) }},
	} {
		for _, n := range nodes {
			if err := step.do(n); err != nil {
				t.Fatalf("%s on %s: %v", step.name, n.LocalName(), err)
			}
		}
	}
	for _, n := range nodes {
		if got := n.Keys(); !reflect.DeepEqual(got, [][]byte{newKey}) {
			t.Errorf("%s: Keys = %x, want only the new key", n.LocalName(), got)
		}
	}
}

func TestKeyringErrors(t *testing.T) {
	log := newTestLog(t)
	k1, k2 := newKey(t, 24), newKey(t, 32)
	plain := netNode(t, log, "plain", 0)
	for name, err := range map[string]error{
		"install": plain.InstallKey(k1), "use": plain.UseKey(k1), "remove": plain.RemoveKey(k1),
	} {
		if !errors.Is(err, ErrNoEncryption) {
			t.Errorf("%s without encryption = %v, want ErrNoEncryption", name, err)
		}
	}
	if plain.Keys() != nil {
		t.Errorf("Keys without encryption = %x", plain.Keys())
	}

	enc := netNode(t, log, "enc", 1, k1)
	if err := enc.InstallKey(k1[:10]); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("InstallKey(10 bytes) = %v, want ErrInvalidKey", err)
	}
	if err := enc.UseKey(k2); err == nil {
		t.Error("UseKey of a key not installed succeeded")
	}
	if err := enc.RemoveKey(k1); err == nil {
		t.Error("RemoveKey of the primary key succeeded")
	}
	keys := enc.Keys()
	keys[0][0] ^= 0xFF
	if !bytes.Equal(enc.Keys()[0], k1) {
		t.Error("Keys shares memory with the keyring")
	}
}
