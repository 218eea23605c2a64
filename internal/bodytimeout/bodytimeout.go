// Package bodytimeout bounds how long an HTTP server waits for a request's
// body: a client that sends its headers and then trickles the body (a
// slowloris) is cut off once the bound passes, while the handler itself
// may run as long as it needs.
//
// http.Server.ReadTimeout bounds the whole request too, but it is one
// setting for every request of a server and holds whether or not the
// request has a body, and the deadline it leaves on a connection whose
// body a handler did not read is one more thing a long handler has to
// live with. Here the deadline is set per request, only on a request that
// has a body, and lifted as soon as the body has been read to its end (or
// when the caller says so), through http.ResponseController, which works
// on HTTP/1 and HTTP/2 alike.
package bodytimeout

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// ErrTimeout is wrapped by the error a body read returns once the bound
// has passed; the error names the bound.
var ErrTimeout = errors.New("request body timeout")

// Handler returns h with Start(w, r, d) run before it on every request.
func Handler(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Start(w, r, d)
		h.ServeHTTP(w, r)
	})
}

// Start gives r's body d from now to arrive whole: it sets a read deadline
// on r's connection (on HTTP/2, its stream) and wraps r.Body so that a
// read past the deadline fails with an error wrapping ErrTimeout, and so
// that the deadline is lifted once the body has been read to its end. It
// returns a func that lifts the deadline earlier (for a body that goes on
// streaming elsewhere); calling it more than once is harmless. A request
// without a body, a d that is not positive, or a ResponseWriter without
// deadlines (an in-memory one) is left as it is.
//
// w must be the server's ResponseWriter or one that unwraps to it
// (http.ResponseController's rule).
func Start(w http.ResponseWriter, r *http.Request, d time.Duration) (lift func()) {
	if d <= 0 || r.Body == nil || r.Body == http.NoBody {
		return func() {}
	}
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(d)); err != nil {
		return func() {}
	}
	b := &body{ReadCloser: r.Body, rc: rc, limit: d}
	r.Body = b
	return b.lift
}

// body is a request body under a read deadline.
type body struct {
	io.ReadCloser
	rc     *http.ResponseController
	limit  time.Duration
	lifted sync.Once
}

// Read is called from the handler's goroutine (or one it starts to copy
// the body), as http.Request.Body allows.
func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == nil:
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = fmt.Errorf("%w: the request body did not arrive within %s", ErrTimeout, b.limit)
	case errors.Is(err, io.EOF):
		b.lift()
	}
	return n, err
}

func (b *body) lift() {
	b.lifted.Do(func() { _ = b.rc.SetReadDeadline(time.Time{}) })
}
