package ingress

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

const bodyBound = 300 * time.Millisecond

// rawPost opens a connection to the rig's front and sends the headers of
// a POST announcing length bytes, then head; it returns the connection.
func rawPost(t *testing.T, r *rig, length int, head string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(r.port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: %d\r\n\r\n%s", length, head)
	return c
}

func readAnswer(t *testing.T, c net.Conn) (int, string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestFrontCutsOffASlowBody: a client that sends its headers and then
// trickles its body is answered 408 naming the bound once it has passed
// (its body would take 50 s), and other clients are served meanwhile.
func TestFrontCutsOffASlowBody(t *testing.T) {
	a := echo(t, "a")
	r := newRig(t, func(c *Config) { c.BodyTimeout = bodyBound }, func(r *rig) Route { return r.route(7, true, hostOf(a)) })
	r.ups.set(7, hostOf(a))
	c := rawPost(t, r, 1000, "")
	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // one byte every 50 ms
		for ctx.Err() == nil {
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	for range 5 {
		resp, err := http.Post(r.url(), "text/plain", strings.NewReader("hi"))
		if err != nil {
			t.Fatalf("another client is not served while one trickles: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "a epoch=7 body=hi" {
			t.Fatalf("another client got %d %q", resp.StatusCode, b)
		}
	}
	code, body := readAnswer(t, c)
	if code != http.StatusRequestTimeout || !strings.Contains(body, bodyBound.String()) {
		t.Fatalf("the trickling client got %d %q, want 408 naming %v", code, body, bodyBound)
	}
	if took := time.Since(start); took > 20*bodyBound {
		t.Fatalf("cut off after %v, want about %v", took, bodyBound)
	}
}

// TestFrontStreamsALargeSlowBody: a body larger than the front keeps for
// a retry streams on to the service, so the bound does not apply to it:
// one that takes longer than the bound still arrives whole.
func TestFrontStreamsALargeSlowBody(t *testing.T) {
	a := echo(t, "a")
	r := newRig(t, func(c *Config) { c.BodyTimeout, c.MaxRetryBody = bodyBound, 4 },
		func(r *rig) Route { return r.route(7, true, hostOf(a)) })
	r.ups.set(7, hostOf(a))
	c := rawPost(t, r, 10, "01234")
	time.Sleep(3 * bodyBound)
	fmt.Fprint(c, "56789")
	if code, body := readAnswer(t, c); code != http.StatusOK || body != "a epoch=7 body=0123456789" {
		t.Fatalf("%d %q, want the whole body passed on", code, body)
	}
}

func TestBodyTimeoutValidates(t *testing.T) {
	cfg := DefaultConfig("127.0.0.1:1")
	cfg.Table, cfg.Local = newTable(), (&upstreams{}).local
	cfg.BodyTimeout = -time.Second
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "BodyTimeout") {
		t.Fatalf("Validate = %v, want the negative BodyTimeout named", err)
	}
}
