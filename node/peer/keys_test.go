package peer

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/lifeboat/lifeboat/node/api"
)

func TestKeyringRequestValidate(t *testing.T) {
	key := bytes.Repeat([]byte{0xab}, 32)
	fp := "0123456789abcdef"
	for _, c := range []struct {
		name string
		req  KeyringRequest
		want string // "" = valid; else the field the refusal names
	}{
		{"list", KeyringRequest{Op: KeyringList}, ""},
		{"install", KeyringRequest{Op: KeyringInstall, Key: key}, ""},
		{"use", KeyringRequest{Op: KeyringUse, Fingerprint: fp}, ""},
		{"remove", KeyringRequest{Op: KeyringRemove, Fingerprint: fp}, ""},
		{"unknown op", KeyringRequest{Op: "rotate"}, "op"},
		{"no op", KeyringRequest{}, "op"},
		{"short key", KeyringRequest{Op: KeyringInstall, Key: key[:10]}, "key"},
		{"no key", KeyringRequest{Op: KeyringInstall}, "key"},
		{"key on use", KeyringRequest{Op: KeyringUse, Fingerprint: fp, Key: key}, "key"},
		{"upper-case fingerprint", KeyringRequest{Op: KeyringUse, Fingerprint: strings.ToUpper(fp)}, "fingerprint"},
		{"short fingerprint", KeyringRequest{Op: KeyringRemove, Fingerprint: fp[:8]}, "fingerprint"},
		{"fingerprint on install", KeyringRequest{Op: KeyringInstall, Key: key, Fingerprint: fp}, "fingerprint"},
	} {
		err := c.req.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (!errors.Is(err, api.ErrBadRequest) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want api.ErrBadRequest naming %s", c.name, err, c.want)
		case err != nil && strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(key)[:10]):
			t.Errorf("%s: the refusal shows the key: %v", c.name, err)
		}
	}
}

func TestKeyringWorstCaseFitsLimit(t *testing.T) {
	req := KeyringRequest{Op: KeyringInstall, Key: bytes.Repeat([]byte{0xff}, 32)}
	b, err := encode(req)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > limitKeyring {
		t.Fatalf("%d bytes, over the limit %d", len(b), limitKeyring)
	}
	got, err := DecodeKeyring(bytes.NewReader(b))
	if err != nil || !bytes.Equal(got.Key, req.Key) {
		t.Fatalf("decoded %+v, %v", got, err)
	}
}
