package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/gossip"
)

// keyBackend is a fakeBackend with a one-node keyring.
type keyBackend struct {
	*fakeBackend
	keys    [][]byte // primary first
	removed []string
}

var _ KeyringBackend = (*keyBackend)(nil)

func (k *keyBackend) status() GossipKeys {
	res := GossipKeys{Node: "n1", Members: 1}
	for i, key := range k.keys {
		res.Keys = append(res.Keys, GossipKey{Fingerprint: gossip.Fingerprint(key), Installed: 1, Primary: btoi(i == 0)})
	}
	return res
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (k *keyBackend) GossipKeys(context.Context) (GossipKeys, error) { return k.status(), nil }
func (k *keyBackend) InstallGossipKey(_ context.Context, key []byte) (GossipKeys, error) {
	k.keys = append(k.keys, key)
	return k.status(), nil
}
func (k *keyBackend) UseGossipKey(_ context.Context, fp string) (GossipKeys, error) {
	for i, key := range k.keys {
		if gossip.Fingerprint(key) == fp {
			k.keys[0], k.keys[i] = k.keys[i], k.keys[0]
			return k.status(), nil
		}
	}
	return GossipKeys{}, fmt.Errorf("%w: no member holds key %s", fsm.ErrNotFound, fp)
}
func (k *keyBackend) RemoveGossipKey(_ context.Context, fp string) (GossipKeys, error) {
	k.removed = append(k.removed, fp)
	return k.status(), nil
}

func newKeyServer(t *testing.T) (*httptest.Server, *keyBackend) {
	t.Helper()
	kb := &keyBackend{fakeBackend: &fakeBackend{workloads: map[string]fsm.WorkloadSpec{}}, keys: [][]byte{bytes.Repeat([]byte{1}, 32)}}
	srv := httptest.NewServer(NewServer(kb, Auth{Write: "w", Read: "r"}, nil))
	t.Cleanup(srv.Close)
	return srv, kb
}

func TestGossipKeyRoutesNeedTheWriteToken(t *testing.T) {
	srv, kb := newKeyServer(t)
	ctx := context.Background()
	key := bytes.Repeat([]byte{2}, 32)
	fp := gossip.Fingerprint(key)
	calls := map[string]func(c *Client) error{
		"list":    func(c *Client) error { _, err := c.GossipKeys(ctx); return err },
		"install": func(c *Client) error { _, err := c.InstallGossipKey(ctx, key); return err },
		"use":     func(c *Client) error { _, err := c.UseGossipKey(ctx, fp); return err },
		"remove":  func(c *Client) error { _, err := c.RemoveGossipKey(ctx, fp); return err },
	}
	for name, call := range calls {
		if err := call(&Client{Base: srv.URL}); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%s without a token: %v, want ErrUnauthorized", name, err)
		}
		if err := call(&Client{Base: srv.URL, Token: "r"}); !errors.Is(err, ErrForbidden) {
			t.Errorf("%s with the read token: %v, want ErrForbidden", name, err)
		}
	}
	if len(kb.keys) != 1 || len(kb.removed) != 0 {
		t.Fatalf("a refused call changed the keyring: %d keys, removed %v", len(kb.keys), kb.removed)
	}
	w := &Client{Base: srv.URL, Token: "w"}
	for _, name := range []string{"list", "install", "use", "remove"} {
		if err := calls[name](w); err != nil {
			t.Errorf("%s with the write token: %v", name, err)
		}
	}
	if len(kb.keys) != 2 || !bytes.Equal(kb.keys[0], key) || len(kb.removed) != 1 || kb.removed[0] != fp {
		t.Errorf("keyring after install, use, remove: %d keys, primary %s, removed %v", len(kb.keys), gossip.Fingerprint(kb.keys[0]), kb.removed)
	}
}

func TestGossipKeyAnswersNeverShowAKey(t *testing.T) {
	srv, kb := newKeyServer(t)
	key := bytes.Repeat([]byte{0x5a}, 32)
	body := `{"key":"` + gossip.EncodeKey(key) + `"}`
	resp := do(t, srv.URL, http.MethodPost, "/v1/gossip/keys", body)
	if resp.status != http.StatusOK || !bytes.Equal(kb.keys[1], key) {
		t.Fatalf("install: %d %s", resp.status, resp.body)
	}
	list := do(t, srv.URL, http.MethodGet, "/v1/gossip/keys", "")
	for _, k := range kb.keys {
		for _, r := range []answer{resp, list} {
			if strings.Contains(r.body, gossip.EncodeKey(k)) {
				t.Errorf("an answer shows a key: %s", r.body)
			}
		}
		if !strings.Contains(list.body, gossip.Fingerprint(k)) {
			t.Errorf("the list lacks fingerprint %s: %s", gossip.Fingerprint(k), list.body)
		}
	}
}

func TestGossipKeyBadRequests(t *testing.T) {
	srv, kb := newKeyServer(t)
	secret := gossip.EncodeKey(bytes.Repeat([]byte{7}, 32))
	for _, c := range []struct {
		name, method, path, body string
		status                   int
	}{
		{"short key", "POST", "/v1/gossip/keys", `{"key":"c2hvcnQ="}`, 400},
		{"not base64", "POST", "/v1/gossip/keys", `{"key":"%%%"}`, 400},
		{"no key", "POST", "/v1/gossip/keys", `{}`, 400},
		{"unknown field", "POST", "/v1/gossip/keys", `{"kee":"` + secret + `"}`, 400},
		{"key as number", "POST", "/v1/gossip/keys", `{"key":12}`, 400},
		{"trailing", "POST", "/v1/gossip/keys", `{"key":"` + secret + `"} {}`, 400},
		{"broken", "POST", "/v1/gossip/keys", `{"key":"` + secret, 400},
		{"huge", "POST", "/v1/gossip/keys", `{"key":"` + strings.Repeat("A", 2000) + `"}`, 413},
		{"use with a key", "POST", "/v1/gossip/keys/use", `{"key":"` + secret + `"}`, 400},
		{"use bad fingerprint", "POST", "/v1/gossip/keys/use", `{"fingerprint":"xyz"}`, 400},
		{"use unknown", "POST", "/v1/gossip/keys/use", `{"fingerprint":"0123456789abcdef"}`, 404},
		{"remove bad fingerprint", "DELETE", "/v1/gossip/keys/ZZZZ", ``, 400},
	} {
		r := do(t, srv.URL, c.method, c.path, c.body)
		if r.status != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, r.status, r.body, c.status)
		}
		if strings.Contains(r.body, secret) || strings.Contains(r.body, secret[:12]) {
			t.Errorf("%s: the refusal shows the key: %s", c.name, r.body)
		}
	}
	if len(kb.keys) != 1 || len(kb.removed) != 0 {
		t.Errorf("a refused request changed the keyring")
	}
}

func TestGossipKeyRoutesAbsentWithoutKeyring(t *testing.T) {
	srv, _ := newTestServer(t, Auth{Write: "w"})
	if r := do(t, srv.URL, http.MethodGet, "/v1/gossip/keys", ""); r.status != http.StatusNotFound {
		t.Errorf("GET /v1/gossip/keys on a backend without a keyring: %d", r.status)
	}
}

type answer struct {
	status int
	body   string
}

// do sends one request with the write token.
func do(t *testing.T, base, method, path, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer w")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(b)}
}

func FuzzDecodeKeyRequests(f *testing.F) {
	f.Add([]byte(`{"key":"AAAAAAAAAAAAAAAAAAAAAA=="}`))
	f.Add([]byte(`{"fingerprint":"0123456789abcdef"}`))
	f.Add([]byte(`{"key":"","fingerprint":""} x`))
	f.Fuzz(func(t *testing.T, b []byte) {
		key, err := DecodeInstallKey(bytes.NewReader(b))
		if err == nil {
			if gossip.CheckKey(key) != nil {
				t.Fatalf("accepted a %d-byte key", len(key))
			}
		} else if !errors.Is(err, ErrBadRequest) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("install: %v is neither a bad request nor too large", err)
		}
		fp, err := DecodeUseKey(bytes.NewReader(b))
		if err == nil {
			if gossip.CheckFingerprint(fp) != nil {
				t.Fatalf("accepted fingerprint %q", fp)
			}
		} else if !errors.Is(err, ErrBadRequest) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("use: %v is neither a bad request nor too large", err)
		}
	})
}
