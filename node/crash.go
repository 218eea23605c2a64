package node

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Crash points, for the Jepsen harness only (Config.Unsafe.CrashPoints):
// at each boundary of the two-phase commit and of a handoff the node
// reads DATA_DIR/crash-at, and when it names that boundary the file is
// removed and the agent SIGKILLs itself there — a crash at exactly the
// worst moment, which random kills rarely hit.
const (
	crashPrepared  = "prepared"  // Prepare applied, nothing shipped (a lazy move's images may be on their way)
	crashShipped   = "shipped"   // standbys verified their copies, no Commit
	crashCommitted = "committed" // Commit applied
	crashGranted   = "granted"   // a handoff's grant applied, the target not yet running
)

// CrashPoints lists the boundaries a crash-at file may name.
var CrashPoints = []string{crashPrepared, crashShipped, crashCommitted, crashGranted}

// crashPoints kills the agent at a named boundary when enabled and
// DATA_DIR/crash-at names it.
type crashPoints struct {
	enabled bool
	dataDir string
	log     *slog.Logger
}

func (c crashPoints) at(name string) {
	if !c.enabled {
		return
	}
	path := filepath.Join(c.dataDir, "crash-at")
	b, err := os.ReadFile(path)
	if err != nil || strings.TrimSpace(string(b)) != name {
		return
	}
	_ = os.Remove(path)
	c.log.Warn("crash point reached: the agent kills itself", "point", name)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
}
