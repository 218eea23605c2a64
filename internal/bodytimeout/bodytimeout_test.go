package bodytimeout

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

const bound = 300 * time.Millisecond

// echo reads the body and answers its length; a timed-out read is
// answered 408 with the error. With ?wait it then waits past the bound
// and reports whether its context is still live.
func echo(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if errors.Is(err, ErrTimeout) {
		http.Error(w, err.Error(), http.StatusRequestTimeout)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.URL.Query().Has("wait") {
		select {
		case <-r.Context().Done():
			http.Error(w, "context ended: "+context.Cause(r.Context()).Error(), http.StatusInternalServerError)
			return
		case <-time.After(3 * bound):
		}
	}
	fmt.Fprintf(w, "%d", len(b))
}

func serve(t *testing.T, h http.Handler, protocols *http.Protocols) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: Handler(h, bound), ReadHeaderTimeout: time.Second, Protocols: protocols}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// trickle sends the headers of a POST announcing 1000 bytes, then one
// byte every 50 ms, and returns the first line of whatever comes back
// and how long after the headers it came.
func trickle(t *testing.T, addr string) (string, time.Duration) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
	start := time.Now()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := 0; i < 1000; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), time.Since(start)
}

// TestSlowBodyIsCutOff: a client that trickles its body is answered 408
// once the bound has passed (long before its body would be complete, 50
// s), and meanwhile other clients are served.
func TestSlowBodyIsCutOff(t *testing.T) {
	addr := serve(t, http.HandlerFunc(echo), nil)
	type result struct {
		line string
		took time.Duration
	}
	done := make(chan result, 1)
	go func() {
		line, took := trickle(t, addr)
		done <- result{line, took}
	}()
	for range 5 {
		resp, err := http.Post("http://"+addr+"/", "text/plain", strings.NewReader("hello"))
		if err != nil {
			t.Fatalf("another client is not served while one trickles: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "5" {
			t.Fatalf("another client got %d %q", resp.StatusCode, b)
		}
	}
	r := <-done
	if !strings.Contains(r.line, "408") {
		t.Fatalf("the trickling client got %q after %v, want 408", r.line, r.took)
	}
	if r.took < bound || r.took > 20*bound {
		t.Fatalf("the trickling client was cut off after %v, want about %v", r.took, bound)
	}
}

// TestLongHandlerKeepsItsContext: once the body is in, the deadline is
// lifted: a handler that runs for several times the bound is not
// cancelled, with a body and without one, on HTTP/1 and HTTP/2.
func TestLongHandlerKeepsItsContext(t *testing.T) {
	var h2 http.Protocols
	h2.SetUnencryptedHTTP2(true)
	for _, proto := range []struct {
		name   string
		server *http.Protocols
	}{{"http1", nil}, {"h2c", &h2}} {
		t.Run(proto.name, func(t *testing.T) {
			addr := serve(t, http.HandlerFunc(echo), proto.server)
			client := &http.Client{Transport: &http.Transport{Protocols: proto.server}}
			for _, body := range []io.Reader{strings.NewReader("hello"), nil} {
				resp, err := client.Post("http://"+addr+"/?wait", "text/plain", body)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("body %v: %d %s", body != nil, resp.StatusCode, b)
				}
				if proto.server != nil && resp.ProtoMajor != 2 {
					t.Fatalf("served over %s, want HTTP/2", resp.Proto)
				}
			}
		})
	}
}

// TestSlowBodyOverHTTP2: the bound holds per stream on HTTP/2.
func TestSlowBodyOverHTTP2(t *testing.T) {
	var h2 http.Protocols
	h2.SetUnencryptedHTTP2(true)
	addr := serve(t, http.HandlerFunc(echo), &h2)
	client := &http.Client{Transport: &http.Transport{Protocols: &h2}, Timeout: 10 * time.Second}
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		for {
			if _, err := pw.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	start := time.Now()
	resp, err := client.Post("http://"+addr+"/", "text/plain", pr)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), bound.String()) {
		t.Fatalf("%s %d %q, want HTTP/2 408 naming %v", resp.Proto, resp.StatusCode, b, bound)
	}
	if took := time.Since(start); took > 20*bound {
		t.Fatalf("cut off after %v, want about %v", took, bound)
	}
}

// TestLift: a caller that lifts the deadline (the body streams on
// elsewhere) may read past the bound.
func TestLift(t *testing.T) {
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lift := Start(w, r, bound) // nested: the later Start sets the deadline again
		lift()
		time.Sleep(2 * bound)
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestTimeout)
			return
		}
		fmt.Fprintf(w, "%d", len(b))
	}), nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nx")
	time.Sleep(4 * bound)
	fmt.Fprintf(c, "y")
	line, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.Contains(line, "200") {
		t.Fatalf("after lift: %q, want 200", line)
	}
}
