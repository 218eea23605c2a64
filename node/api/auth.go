package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Auth decides who may call the admin API. There is no open mode: every
// route but /healthz and /readyz needs a credential.
//   - Write (bearer token) grants everything.
//   - Read (bearer token) grants GETs only: a write with it is 403.
//   - A client certificate of the cluster CA with role client grants
//     everything; ClientCert reports it (nil: none is accepted).
//
// A workload's own token (WorkloadToken) opens its own results log only.
type Auth struct {
	Write string
	Read  string
	// ClientCert reports whether r came over TLS with a verified client
	// certificate of role client.
	ClientCert func(r *http.Request) bool
	// WorkloadKey keys the workloads' own tokens (WorkloadToken); it must
	// be the same on every peer. Empty: workloads get no token.
	WorkloadKey []byte
}

// check authorizes a request; write says whether it changes anything.
func (a Auth) check(r *http.Request, write bool) error {
	if a.ClientCert != nil && a.ClientCert(r) {
		return nil
	}
	h := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	if h == "" || !ok {
		return fmt.Errorf("%w: send the API token as \"Authorization: Bearer TOKEN\" or present a client certificate of the cluster CA (lifeboat ca issue NAME --role client)", ErrUnauthorized)
	}
	if equal(token, a.Write) {
		return nil
	}
	if equal(token, a.Read) {
		if write {
			return fmt.Errorf("%w: the read-only token cannot change anything; use the write token", ErrForbidden)
		}
		return nil
	}
	return fmt.Errorf("%w: the API token is not valid for this cluster", ErrUnauthorized)
}

func equal(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// writer reports whether r carries a write credential: only a writer sees
// secrets (the values of a spec's env).
func (a Auth) writer(r *http.Request) bool {
	if a.ClientCert != nil && a.ClientCert(r) {
		return true
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && equal(token, a.Write)
}

// Redacted stands for an env value a reader may not see.
const Redacted = "(redacted)"

// redact returns w with its env values hidden: a reader sees the names.
func redact(w Workload) Workload {
	if len(w.Spec.Env) == 0 {
		return w
	}
	env := make(map[string]string, len(w.Spec.Env))
	for k := range w.Spec.Env {
		env[k] = Redacted
	}
	w.Spec.Env = env
	return w
}

// WorkloadToken is the credential workload id gets for its own results
// log under epoch (LIFEBOAT_TOKEN): an HMAC keyed by WorkloadKey, so
// every peer checks it without keeping it, and a copy of an older epoch
// cannot use it for a newer one. "" when there is no key.
func (a Auth) WorkloadToken(id string, epoch uint64) string {
	if len(a.WorkloadKey) == 0 {
		return ""
	}
	mac := hmac.New(sha256.New, a.WorkloadKey)
	mac.Write([]byte("lifeboat-results\x00" + id + "\x00" + strconv.FormatUint(epoch, 10)))
	return hex.EncodeToString(mac.Sum(nil))
}

// workloadResults reports whether r carries workload id's own token for
// the epoch in its X-Lifeboat-Epoch header.
func (a Auth) workloadResults(r *http.Request, id string) bool {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	epoch, err := strconv.ParseUint(r.Header.Get("X-Lifeboat-Epoch"), 10, 64)
	return ok && err == nil && epoch > 0 && equal(token, a.WorkloadToken(id, epoch))
}
