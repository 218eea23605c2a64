package peer

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/lifeboat/lifeboat/gossip"
)

// pathKeyring changes or lists the gossip keyring of one peer. The node
// that serves the admin API's /v1/gossip/keys sends it to every member in
// turn (as serf's key manager sends a query to every member): memberlist's
// keyring is per node.
const pathKeyring = "/v1/internal/gossip/keys"

// limitKeyring bounds a KeyringRequest: an op, a 32-byte key in base64 or a
// fingerprint.
const limitKeyring = 1 << 10

// Keyring operations, the steps of a rotation (install, use, remove).
const (
	KeyringList    = "list"
	KeyringInstall = "install"
	KeyringUse     = "use"
	KeyringRemove  = "remove"
)

// KeyringRequest asks a peer to change or list its gossip keyring.
type KeyringRequest struct {
	Op string `json:"op"`
	// Key is the key to install (install only); base64 in JSON. It is
	// never logged or answered.
	Key []byte `json:"key,omitempty"`
	// Fingerprint names the key to use or remove (gossip.Fingerprint).
	Fingerprint string `json:"fingerprint,omitempty"`
}

// KeyringAnswer is a peer's keyring after the request, by fingerprint.
type KeyringAnswer struct {
	// Primary is the key this peer encrypts with.
	Primary string `json:"primary"`
	// Fingerprints are every installed key, the primary first.
	Fingerprints []string `json:"fingerprints"`
}

// KeyringHandler is the add-on a Handler implements to serve
// /v1/internal/gossip/keys; called like Handler's methods.
type KeyringHandler interface {
	// Keyring applies req to this peer's keyring only, keeps the result
	// for the next start, and answers the keyring after it.
	Keyring(ctx context.Context, req KeyringRequest) (KeyringAnswer, error)
}

// registerKeyring mounts the keyring endpoint if h serves it.
func registerKeyring(mux *http.ServeMux, h Handler) {
	if k, ok := h.(KeyringHandler); ok {
		mux.HandleFunc("POST "+pathKeyring, endpoint[KeyringRequest, KeyringAnswer]{decode: DecodeKeyring, call: k.Keyring}.serve)
	}
}

// Keyring asks the peer at addr to apply req to its own keyring.
func (c *Client) Keyring(ctx context.Context, addr string, req KeyringRequest) (KeyringAnswer, error) {
	var ans KeyringAnswer
	return ans, c.call(ctx, addr, pathKeyring, req, &ans)
}

// DecodeKeyring reads a KeyringRequest of at most 1 KiB.
func DecodeKeyring(r io.Reader) (KeyringRequest, error) {
	return decode[KeyringRequest](r, "keyring", limitKeyring)
}

// Validate reports what is wrong with the request; it never shows the key.
func (r KeyringRequest) Validate() error {
	switch r.Op {
	case KeyringList:
	case KeyringInstall:
		if err := gossip.CheckKey(r.Key); err != nil {
			return bad("keyring", "key", fmt.Sprintf("is %d bytes, want 16, 24 or 32", len(r.Key)))
		}
	case KeyringUse, KeyringRemove:
		if err := gossip.CheckFingerprint(r.Fingerprint); err != nil {
			return bad("keyring", "fingerprint", fmt.Sprintf("must be %d lower-case hex digits", gossip.FingerprintLen))
		}
	default:
		return bad("keyring", "op", fmt.Sprintf("%.20q: want list, install, use or remove", r.Op))
	}
	if r.Op != KeyringInstall && r.Key != nil {
		return bad("keyring", "key", "is only for install")
	}
	if (r.Op == KeyringList || r.Op == KeyringInstall) && r.Fingerprint != "" {
		return bad("keyring", "fingerprint", "is only for use and remove")
	}
	return nil
}
