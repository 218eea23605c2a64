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

// Auth holds the bearer tokens of the admin API. Write grants everything;
// Read grants GETs only. When both are empty the API is open.
type Auth struct {
	Write string
	Read  string
}

// Enabled reports whether any token is configured.
func (a Auth) Enabled() bool { return a.Write != "" || a.Read != "" }

// check authorizes a request; write says whether it changes anything.
func (a Auth) check(r *http.Request, write bool) error {
	if !a.Enabled() {
		return nil
	}
	h := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	if h == "" || !ok {
		return fmt.Errorf("%w: send the API token as \"Authorization: Bearer TOKEN\"", ErrUnauthorized)
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

// writer reports whether r carries the write token, or the API is open:
// only a writer sees secrets (the values of a spec's env).
func (a Auth) writer(r *http.Request) bool {
	if !a.Enabled() {
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
// log under epoch (LIFEBOAT_TOKEN): an HMAC keyed by the write token, so
// every peer checks it without keeping it, and a copy of an older epoch
// cannot use it for a newer one. "" when the API has no write token.
func (a Auth) WorkloadToken(id string, epoch uint64) string {
	if a.Write == "" {
		return ""
	}
	mac := hmac.New(sha256.New, []byte(a.Write))
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
