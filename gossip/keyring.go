package gossip

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/hashicorp/memberlist"
)

// ErrNoEncryption is returned by the keyring methods when the node started
// without keys.
var ErrNoEncryption = errors.New("gossip: encryption is off: it can only be enabled at start " +
	"(Config.Keys), memberlist cannot turn it on later; restart every node with a key")

// Key rotation across a running cluster, with no downtime:
//
//  1. InstallKey(new) on every node: each can now decrypt both keys.
//  2. UseKey(new) on every node: each now encrypts with the new key.
//  3. RemoveKey(old) on every node.
//
// Each step must have reached every node before the next starts, or a
// node will receive messages it cannot decrypt. These methods change only
// this node's keyring; coordinating the steps is the caller's job. The
// keyring is memberlist's and is safe for concurrent use.

// newKeyring returns the keyring for keys with keys[0] as primary, or nil
// when keys is empty (no encryption).
func newKeyring(keys [][]byte) (*memberlist.Keyring, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	own := make([][]byte, len(keys)) // memberlist keeps the slices it is given
	for i, key := range keys {
		own[i] = bytes.Clone(key)
	}
	k, err := memberlist.NewKeyring(own, own[0])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	return k, nil
}

// InstallKey adds key to the keyring, for decryption only (step 1).
func (g *Gossip) InstallKey(key []byte) error {
	if g.keyring == nil {
		return ErrNoEncryption
	}
	if err := checkKey(key); err != nil {
		return err
	}
	return g.keyring.AddKey(bytes.Clone(key))
}

// UseKey makes an installed key the primary one, used to encrypt (step 2).
func (g *Gossip) UseKey(key []byte) error {
	if g.keyring == nil {
		return ErrNoEncryption
	}
	if err := g.keyring.UseKey(key); err != nil {
		return fmt.Errorf("gossip: use key: %w (install it first)", err)
	}
	return nil
}

// RemoveKey removes a key that is not the primary one (step 3); removing
// a key that is not installed does nothing.
func (g *Gossip) RemoveKey(key []byte) error {
	if g.keyring == nil {
		return ErrNoEncryption
	}
	if err := g.keyring.RemoveKey(key); err != nil {
		return fmt.Errorf("gossip: remove key: %w (make another key primary first)", err)
	}
	return nil
}

// Keys returns copies of the installed keys, the primary first; nil when
// encryption is off.
func (g *Gossip) Keys() [][]byte {
	if g.keyring == nil {
		return nil
	}
	keys := g.keyring.GetKeys()
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = bytes.Clone(k)
	}
	return out
}
