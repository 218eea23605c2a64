package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/lifeboat/lifeboat/gossip"
)

// GossipKeys is the cluster's gossip keyring as its members reported it:
// keys by fingerprint only, never the keys themselves.
type GossipKeys struct {
	// Node is the peer that asked every member.
	Node string `json:"node"`
	// Members is how many members answered.
	Members int         `json:"members"`
	Keys    []GossipKey `json:"keys"`
	// Failed are the members asked that did not answer, with why.
	Failed map[string]string `json:"failed,omitempty"`
	// Unreached are the members gossip lists as dead or left: not asked.
	// Each needs the current key before it can join again.
	Unreached []string `json:"unreached,omitempty"`
}

// GossipKey is one key of the keyring.
type GossipKey struct {
	Fingerprint string `json:"fingerprint"`
	// Installed is how many members hold the key (decrypt with it).
	Installed int `json:"installed"`
	// Primary is how many members encrypt with it.
	Primary int `json:"primary"`
	// Missing are the members that answered without this key.
	Missing []string `json:"missing,omitempty"`
}

// KeyRequest is the body of POST /v1/gossip/keys ({"key": base64}) and of
// POST /v1/gossip/keys/use ({"fingerprint": ...}).
type KeyRequest struct {
	Key         string `json:"key,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
}

// KeyringBackend is the add-on a Backend implements to serve
// /v1/gossip/keys: each call reaches every live member and returns the
// keyring as they report it after the change. Called like Backend's
// methods; a member that could not be reached makes a change an error
// (ErrUnavailable) that names it, after the others have changed.
type KeyringBackend interface {
	GossipKeys(ctx context.Context) (GossipKeys, error)
	// InstallGossipKey adds key on every member, for decryption.
	InstallGossipKey(ctx context.Context, key []byte) (GossipKeys, error)
	// UseGossipKey makes the key every member holds the one they encrypt
	// with (ErrConflict if a member lacks it).
	UseGossipKey(ctx context.Context, fingerprint string) (GossipKeys, error)
	// RemoveGossipKey removes a key no member encrypts with any more
	// (ErrConflict if one still does).
	RemoveGossipKey(ctx context.Context, fingerprint string) (GossipKeys, error)
}

// maxKeyRequest bounds a KeyRequest body.
const maxKeyRequest = 1 << 10

// keyRoutes mounts /v1/gossip/keys when the backend serves it. Every route
// needs the write token, listing too: the keyring is the cluster's secret.
func (s *Server) keyRoutes() {
	kb, ok := s.backend.(KeyringBackend)
	if !ok {
		return
	}
	s.mux.HandleFunc("GET /v1/gossip/keys", s.guard(true, func(w http.ResponseWriter, r *http.Request) {
		res, err := kb.GossipKeys(r.Context())
		respond(w, http.StatusOK, res, err)
	}))
	s.mux.HandleFunc("POST /v1/gossip/keys", s.guard(true, func(w http.ResponseWriter, r *http.Request) {
		key, err := DecodeInstallKey(r.Body)
		if err != nil {
			WriteError(w, err)
			return
		}
		res, err := kb.InstallGossipKey(r.Context(), key)
		respond(w, http.StatusOK, res, err)
	}))
	s.mux.HandleFunc("POST /v1/gossip/keys/use", s.guard(true, func(w http.ResponseWriter, r *http.Request) {
		fp, err := DecodeUseKey(r.Body)
		if err != nil {
			WriteError(w, err)
			return
		}
		res, err := kb.UseGossipKey(r.Context(), fp)
		respond(w, http.StatusOK, res, err)
	}))
	s.mux.HandleFunc("DELETE /v1/gossip/keys/{fingerprint}", s.guard(true, func(w http.ResponseWriter, r *http.Request) {
		fp := r.PathValue("fingerprint")
		if err := gossip.CheckFingerprint(fp); err != nil {
			WriteError(w, badRequest("%v (from GET /v1/gossip/keys)", err))
			return
		}
		res, err := kb.RemoveGossipKey(r.Context(), fp)
		respond(w, http.StatusOK, res, err)
	}))
}

// DecodeInstallKey reads {"key": base64 of 16, 24 or 32 bytes}, strictly.
// Its errors never show the key.
func DecodeInstallKey(r io.Reader) ([]byte, error) {
	req, err := decodeKeyRequest(r)
	if err != nil {
		return nil, err
	}
	if req.Fingerprint != "" || req.Key == "" {
		return nil, badRequest("install a gossip key with {\"key\": \"BASE64\"} (16, 24 or 32 bytes, e.g. `openssl rand -base64 32`)")
	}
	key, err := gossip.ParseKey(req.Key)
	if err != nil {
		return nil, badRequest("key: %v", err)
	}
	return key, nil
}

// DecodeUseKey reads {"fingerprint": 16 hex digits}, strictly.
func DecodeUseKey(r io.Reader) (string, error) {
	req, err := decodeKeyRequest(r)
	if err != nil {
		return "", err
	}
	if req.Key != "" {
		return "", badRequest("use names a key by its fingerprint, {\"fingerprint\": \"...\"}; never send the key itself here")
	}
	if err := gossip.CheckFingerprint(req.Fingerprint); err != nil {
		return "", badRequest("%v (from GET /v1/gossip/keys)", err)
	}
	return req.Fingerprint, nil
}

func decodeKeyRequest(r io.Reader) (KeyRequest, error) {
	var req KeyRequest
	body, err := io.ReadAll(io.LimitReader(r, maxKeyRequest+1))
	switch {
	case err != nil:
		return req, badRequest("reading the body: %v", err)
	case len(body) > maxKeyRequest:
		return req, fmt.Errorf("%w: a gossip key request is at most %d bytes", ErrTooLarge, maxKeyRequest)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return KeyRequest{}, badRequest("the body is not a JSON object with \"key\" or \"fingerprint\" (%s)", jsonProblem(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return KeyRequest{}, badRequest("the body has data after the JSON object")
	}
	return req, nil
}

// jsonProblem names what is wrong with a body without quoting it: a syntax
// error's offset, a type error's field (the body may hold a key).
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q must be a %s", typ.Field, typ.Type)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "it ends early"
	}
	return "an unknown field, or not an object"
}

// GossipKeys is GET /v1/gossip/keys.
func (c *Client) GossipKeys(ctx context.Context) (GossipKeys, error) {
	var res GossipKeys
	return res, c.Do(ctx, http.MethodGet, "/v1/gossip/keys", nil, "", &res)
}

// InstallGossipKey is POST /v1/gossip/keys.
func (c *Client) InstallGossipKey(ctx context.Context, key []byte) (GossipKeys, error) {
	var res GossipKeys
	body, _ := json.Marshal(KeyRequest{Key: gossip.EncodeKey(key)})
	return res, c.Do(ctx, http.MethodPost, "/v1/gossip/keys", body, "application/json", &res)
}

// UseGossipKey is POST /v1/gossip/keys/use.
func (c *Client) UseGossipKey(ctx context.Context, fingerprint string) (GossipKeys, error) {
	var res GossipKeys
	body, _ := json.Marshal(KeyRequest{Fingerprint: fingerprint})
	return res, c.Do(ctx, http.MethodPost, "/v1/gossip/keys/use", body, "application/json", &res)
}

// RemoveGossipKey is DELETE /v1/gossip/keys/{fingerprint}.
func (c *Client) RemoveGossipKey(ctx context.Context, fingerprint string) (GossipKeys, error) {
	var res GossipKeys
	return res, c.Do(ctx, http.MethodDelete, "/v1/gossip/keys/"+url.PathEscape(fingerprint), nil, "", &res)
}
