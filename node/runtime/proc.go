package runtime

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"syscall"
	"time"
)

// Process control: waiting for a workload's process, stopping it, and the
// fence's signals to every workload (Freeze, Thaw). A workload's process
// leads its own process group; signals go to the group.

// waitFor waits for proc in a goroutine of its own, which ends when the
// process ends (stop and restart kill it), and sends its exit once: nil
// for a clean exit.
func waitFor(proc *os.Process) chan error {
	waitCh := make(chan error, 1)
	go func() {
		st, err := proc.Wait()
		if err == nil && !st.Success() {
			err = errors.New(st.String())
		}
		waitCh <- err
	}()
	return waitCh
}

// terminate stops the process: SIGTERM (and SIGCONT, in case it was
// stopped otherwise), then SIGKILL after StopTimeout. A process a fence
// froze gets SIGKILL at once: it is stopped because another node may be
// running the workload by now (this is how a healed holder drops a
// workload that was re-granted away), and a SIGCONT would let it serve
// again, if only until its SIGTERM handler ran.
func (u *unit) terminate(proc *os.Process, waitCh chan error) {
	if u.frozen.Load() || stopped(proc.Pid) {
		// stopped: the fence keeper froze it while the agent itself was
		// stopped, so the frozen flag does not know.
		u.s.log.Warn("killing a frozen workload without thawing it", "workload", u.spec.ID, "pid", proc.Pid)
		killGroup(proc)
		<-waitCh
		return
	}
	_ = proc.Signal(syscall.SIGTERM)
	_ = syscall.Kill(-proc.Pid, syscall.SIGCONT)
	select {
	case <-waitCh:
		return
	case <-time.After(u.s.cfg.StopTimeout):
	}
	_ = proc.Kill()
	<-waitCh
}

// killGroup kills proc and its process group at once (SIGKILL), without
// waiting for it.
func killGroup(proc *os.Process) {
	_ = syscall.Kill(-proc.Pid, syscall.SIGKILL)
	_ = proc.Kill()
}

// stopped reports whether the process is in the stopped state (T): a
// fence froze it.
func stopped(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state …: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'T'
}

// Freeze stops every running workload's processes where they are
// (SIGSTOP to each process group): a fenced holder must not serve. Thaw
// resumes them. Both act on the processes as they are now; a workload
// that starts later (a restart) is not frozen.
func (s *Supervisor) Freeze() []string { return s.signalAll(syscall.SIGSTOP) }

// Thaw resumes what Freeze stopped.
func (s *Supervisor) Thaw() []string { return s.signalAll(syscall.SIGCONT) }

func (s *Supervisor) signalAll(sig syscall.Signal) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id, u := range s.units {
		if pid := u.pid(); pid > 0 {
			if sig == syscall.SIGSTOP {
				u.frozen.Store(true) // before the signal: a terminate racing it must not thaw
			}
			if err := syscall.Kill(-pid, sig); err != nil {
				s.log.Warn("signalling a workload failed", "workload", id, "signal", sig, "err", err)
				continue
			}
			if sig == syscall.SIGCONT {
				u.frozen.Store(false)
			}
			ids = append(ids, id)
		}
	}
	return ids
}
