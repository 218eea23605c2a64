package runtime

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// criuLogsKept is how many CRIU logs of each kind (dump, restore) stay in a
// workload's log directory; older ones are removed when a new one starts.
const criuLogsKept = 5

// criuLogDir is where CRIU writes its logs and stats for a workload. It is
// never the images directory: a checkpoint handed to Start is read-only.
func criuLogDir(w Workload) string { return filepath.Join(w.Dir, "criu-logs") }

// criuOpLog is the log of one CRIU operation (a dump or a restore).
type criuOpLog struct {
	dir  *os.File // the open log directory, handed to CRIU as its work dir
	name string   // the log file's name inside dir
}

// newCRIUOpLog opens the workload's CRIU log directory, drops the oldest
// logs of kind op beyond criuLogsKept-1 and names a new one, op-<time>.log.
func newCRIUOpLog(w Workload, op string, now time.Time) (*criuOpLog, error) {
	path := criuLogDir(w)
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, err
	}
	pruneCRIULogs(path, op, criuLogsKept-1)
	d, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("%s-%s.log", op, now.UTC().Format("20060102T150405.000000000"))
	return &criuOpLog{dir: d, name: name}, nil
}

// Path is the log file's full path.
func (l *criuOpLog) Path() string { return filepath.Join(l.dir.Name(), l.name) }

// Close closes the log directory.
func (l *criuOpLog) Close() error { return l.dir.Close() }

// pruneCRIULogs removes the oldest op-*.log files in dir so that at most
// keep remain. The names sort by time, so the oldest sort first.
func pruneCRIULogs(dir, op string, keep int) {
	names, err := filepath.Glob(filepath.Join(dir, op+"-*.log"))
	if err != nil || len(names) <= keep {
		return
	}
	sort.Strings(names)
	for _, n := range names[:len(names)-keep] {
		_ = os.Remove(n)
	}
}

// harmlessCRIUErrors are "Error" lines CRIU logs that do not make an
// operation fail: without CAP_SYS_RESOURCE it cannot raise RLIMIT_NOFILE,
// says so as an error, and carries on.
var harmlessCRIUErrors = []string{"RLIMIT_NOFILE"}

// criuLogError returns the first real "Error (" line in the CRIU log at
// path, without its timestamp, or "" when there is none.
func criuLogError(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.Index(line, "Error (")
		if i < 0 || isHarmlessCRIUError(line) {
			continue
		}
		return strings.TrimSpace(line[i:])
	}
	return ""
}

func isHarmlessCRIUError(line string) bool {
	for _, h := range harmlessCRIUErrors {
		if strings.Contains(line, h) {
			return true
		}
	}
	return false
}

// criuError builds the error of a failed CRIU operation: the sentinel,
// CRIU's real error from its log (go-criu only reports the first Error
// line, which is usually the harmless rlimit one) and where the log is.
func criuError(sentinel error, w Workload, what string, err error, log *criuOpLog) error {
	msg := criuLogError(log.Path())
	if msg == "" {
		msg = err.Error()
	}
	return fmt.Errorf("%w: workload %s: %s: %s (CRIU log %s)", sentinel, w.Spec.ID, what, msg, log.Path())
}
