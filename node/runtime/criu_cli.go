package runtime

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
)

// The criu command line, for what CRIU's RPC cannot do: a lazy dump that
// can be abandoned (its criu process killed) and the lazy-pages daemon
// (criu_lazy.go). Both write a status byte on fd 3 once they serve.

// criuProc is a criu command-line process this node started.
type criuProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when it exited
	err  error         // its exit; read after done
}

// Done is closed when the process has exited.
func (p *criuProc) Done() <-chan struct{} { return p.done }

// Err is how the process exited, once Done is closed.
func (p *criuProc) Err() error {
	<-p.done
	return p.err
}

// kill kills the process and waits for it.
func (p *criuProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// cliOpts are the command-line twins of baseOpts, with the log in log.
func (c *CRIU) cliOpts(log *criuOpLog) []string {
	tcp := "--tcp-established"
	if c.cfg.TCPClose {
		tcp = "--tcp-close"
	}
	return []string{"-W", log.dir.Name(), "-o", log.name, "-v" + strconv.Itoa(c.cfg.LogLevel),
		tcp, "--skip-in-flight", "--network-lock", c.cfg.NetworkLock, "--status-fd", "3"}
}

// runWithStatus starts criu with args and a status pipe on fd 3 as p, and
// returns once criu has written its status byte (the page server or the
// daemon serves); p.Done is closed when criu exits. It fails if criu
// cannot start or exits before it is ready (or ctx ends first: criu is
// killed then).
func (c *CRIU) runWithStatus(ctx context.Context, args []string, p *criuProc) error {
	ready, err := c.startWithStatus(args, p)
	if err != nil {
		return err
	}
	return ready(ctx)
}

// startWithStatus is runWithStatus in two steps: it starts criu and
// returns the wait for its status byte, to call once.
func (c *CRIU) startWithStatus(args []string, p *criuProc) (ready func(context.Context) error, err error) {
	rd, wr, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(c.cfg.Path, args...)
	cmd.ExtraFiles = []*os.File{wr}
	if err := cmd.Start(); err != nil {
		rd.Close()
		wr.Close()
		return nil, err
	}
	wr.Close()
	p.cmd, p.done = cmd, make(chan struct{})
	go func() { // ends when criu exits; Abort, Kill and Close kill it
		p.err = cmd.Wait()
		close(p.done)
	}()
	status := make(chan error, 1)
	go func() { // ends at the status byte or when criu exits (EOF)
		defer rd.Close()
		var b [1]byte
		_, err := rd.Read(b[:])
		status <- err
	}()
	return func(ctx context.Context) error {
		select {
		case err := <-status:
			if err == nil {
				return nil
			}
			if err := p.Err(); err != nil {
				return err
			}
			return errors.New("criu exited before it was ready")
		case <-ctx.Done():
			p.kill()
			<-status
			return ctx.Err()
		}
	}, nil
}
