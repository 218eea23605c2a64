package ingress

import (
	"context"
	"io"
	"net"
	"sync"
)

// tcpFront is one plain-TCP service's listener on this peer: each
// connection is held until a holder is ready (within the budget; past
// it, or past MaxHeld waiting connections, it is closed) and then piped
// to the service on the holder. A connection open during a move breaks
// with the old holder's process, as TCP without a proxy-side protocol
// must.
type tcpFront struct {
	in *Ingress
	r  Route
	ln net.Listener

	mu    sync.Mutex // guards conns, held
	conns map[net.Conn]struct{}
	held  int
	wg    sync.WaitGroup
}

func newTCPFront(in *Ingress, r Route, ln net.Listener) *tcpFront {
	f := &tcpFront{in: in, r: r, ln: ln, conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.acceptLoop()
	return f
}

func (f *tcpFront) route() Route { return f.r }

// drain: plain TCP has no way to tell a client to go; nothing to do
// beyond /readyz.
func (f *tcpFront) drain() {}

func (f *tcpFront) close() {
	f.ln.Close()
	f.mu.Lock()
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *tcpFront) acceptLoop() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		if !f.track(c, true) {
			c.Close()
			continue
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer f.track(c, false)
			f.serve(c)
		}()
	}
}

// track adds or removes a client connection; false when closing.
func (f *tcpFront) track(c net.Conn, add bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !add {
		delete(f.conns, c)
		c.Close()
		return true
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *tcpFront) serve(c net.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), f.in.budget(f.r))
	rt, ok := f.in.lookup(f.r.Service)
	if !ok || !rt.Ready {
		f.mu.Lock()
		full := f.held >= f.in.cfg.MaxHeld
		if !full {
			f.held++
		}
		f.mu.Unlock()
		if full {
			cancel()
			return
		}
		var err error
		rt, err = f.in.waitReady(ctx, f.r.Service, 0)
		f.mu.Lock()
		f.held--
		f.mu.Unlock()
		if err != nil {
			cancel()
			return
		}
	}
	cancel()
	up, err := net.DialTimeout("tcp", rt.Upstream, f.in.cfg.DialTimeout)
	if err != nil {
		f.in.cfg.Logger.Warn("ingress: the service refused a connection", "service", f.r.Service, "upstream", rt.Upstream, "err", err)
		return
	}
	f.mu.Lock()
	f.conns[up] = struct{}{}
	f.mu.Unlock()
	defer f.track(up, false)
	var wg sync.WaitGroup
	wg.Add(2)
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}
	go pipe(up, c)
	go pipe(c, up)
	wg.Wait()
}
