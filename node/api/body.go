package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/lifeboat/lifeboat/internal/bodytimeout"
)

// Request body bounds. Every body the API reads (peer endpoints
// included) is bounded in size, answered 413 past its bound, and in
// time, answered 408 once BodyTimeout has passed.
const (
	// MaxBody bounds a request body: a workload spec, a peer's command.
	MaxBody = 1 << 20
	// MaxResult bounds one value appended to a workload's results log:
	// every replica keeps up to fsm.MaxResults of them, and up to
	// fsm.MaxResultBytes in all.
	MaxResult = 64 << 10
	// MaxSmallBody bounds the bodies of the small JSON requests (migrate,
	// restart).
	MaxSmallBody = 4 << 10
	// BodyTimeout is how long a request's body may take to arrive, from
	// the end of its headers. The bound is on the body, not the handler:
	// a migrate may run for minutes once its body is in.
	BodyTimeout = 30 * time.Second
)

// ErrBodyTimeout is wrapped by the error of a body that did not arrive
// within BodyTimeout (408).
var ErrBodyTimeout = bodytimeout.ErrTimeout

// WithBodyTimeout gives the body of every request h serves d (the
// agent's: BodyTimeout) to arrive; a body still arriving then is
// answered 408 naming d, and other clients are not held up. It must see
// the server's own ResponseWriter: put it outermost.
func WithBodyTimeout(h http.Handler, d time.Duration) http.Handler {
	return bodytimeout.Handler(h, d)
}

// readBody reads r's body whole; what names it in errors. A body over
// limit is refused with ErrTooLarge naming the limit, before it is read
// when its length is announced.
func readBody(r *http.Request, limit int64, what string) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, tooLarge(what, limit)
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	switch {
	case errors.Is(err, ErrBodyTimeout):
		return nil, err
	case err != nil:
		return nil, badRequest("reading %s: %v", what, err)
	case int64(len(b)) > limit:
		return nil, tooLarge(what, limit)
	}
	return b, nil
}

// tooLarge is the refusal of a body over limit bytes.
func tooLarge(what string, limit int64) error {
	return fmt.Errorf("%w: %s is over the limit of %s", ErrTooLarge, what, byteSize(limit))
}

// byteSize says a size the way the limits are written: "64 KiB (65536
// bytes)", exact bytes for what is not a whole KiB.
func byteSize(n int64) string {
	units := []string{"KiB", "MiB", "GiB", "TiB"}
	for i := len(units) - 1; i >= 0; i-- {
		if u := int64(1) << (10 * (i + 1)); n >= u && n%u == 0 {
			return fmt.Sprintf("%d %s (%d bytes)", n/u, units[i], n)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}
