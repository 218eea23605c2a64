package ingress

import (
	"net"
	"sync"
)

// switchListener accepts on a real listener and hands the connections to
// its current inner listener, so that a drained front can move new
// connections to another server without closing the port (clients that
// still come are served, not refused).
type switchListener struct {
	ln net.Listener

	mu    sync.Mutex // guards cur
	cur   *chanListener
	close sync.Once
}

func newSwitchListener(ln net.Listener) *switchListener {
	s := &switchListener{ln: ln}
	go s.acceptLoop()
	return s
}

// next makes a new inner listener current and closes the previous one.
func (s *switchListener) next() net.Listener {
	c := &chanListener{conns: make(chan net.Conn), done: make(chan struct{}), addr: s.ln.Addr()}
	s.mu.Lock()
	old := s.cur
	s.cur = c
	s.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return c
}

// acceptLoop ends when the real listener is closed.
func (s *switchListener) acceptLoop() {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			s.mu.Lock()
			cur := s.cur
			s.mu.Unlock()
			if cur != nil {
				cur.Close()
			}
			return
		}
		s.hand(conn)
	}
}

// hand gives conn to the current inner listener; if that one closes
// meanwhile (a drain switched servers), to its successor.
func (s *switchListener) hand(conn net.Conn) {
	for {
		s.mu.Lock()
		cur := s.cur
		s.mu.Unlock()
		if cur == nil {
			conn.Close()
			return
		}
		if cur.give(conn) {
			return
		}
		s.mu.Lock()
		same := s.cur == cur
		s.mu.Unlock()
		if same { // closed for good
			conn.Close()
			return
		}
	}
}

// Close closes the real listener (and so the inner ones).
func (s *switchListener) Close() error {
	var err error
	s.close.Do(func() { err = s.ln.Close() })
	return err
}

// chanListener is a net.Listener fed by a switchListener.
type chanListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	addr  net.Addr
}

func (c *chanListener) give(conn net.Conn) bool {
	select {
	case c.conns <- conn:
		return true
	case <-c.done:
		return false
	}
}

func (c *chanListener) Accept() (net.Conn, error) {
	select {
	case conn := <-c.conns:
		return conn, nil
	case <-c.done:
		return nil, net.ErrClosed
	}
}

func (c *chanListener) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}

func (c *chanListener) Addr() net.Addr { return c.addr }
