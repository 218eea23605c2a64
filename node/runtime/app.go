package runtime

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
)

// App is the app checkpoint mode: the application saves itself. The
// supervisor calls its hook,
//
//	POST http://127.0.0.1:PORT/lifeboat/checkpoint?dir=DIR
//
// where PORT is the spec's service port, and the application writes its
// state into DIR (an empty directory) and answers 2xx once it is durable.
// A restored copy starts with LIFEBOAT_RESTORE_DIR=DIR in its environment
// and reads its state back. Needs neither root nor CRIU.
type App struct {
	client *http.Client
}

var _ Checkpointer = (*App)(nil)

// NewApp returns the app checkpointer.
func NewApp() *App {
	return &App{client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}
}

// Mode is fsm.ModeApp.
func (a *App) Mode() string { return fsm.ModeApp }

// Start launches the workload, restored from `from` when it is set.
func (a *App) Start(ctx context.Context, w Workload, from string) (*os.Process, error) {
	if from == "" {
		return launch(w)
	}
	return launch(w, "LIFEBOAT_RESTORE_DIR="+from)
}

// Checkpoint calls the application's hook; without leaveRunning it then
// stops the process with SIGTERM.
func (a *App) Checkpoint(ctx context.Context, w Workload, p *os.Process, dir string, leaveRunning bool) (Stats, error) {
	start := time.Now()
	if w.Spec.Service == nil || w.Spec.Service.Port == 0 {
		return Stats{}, fmt.Errorf("%w: workload %s: app mode needs service.port for its hook", ErrCheckpoint, w.Spec.ID)
	}
	u := "http://127.0.0.1:" + strconv.Itoa(w.Spec.Service.Port) + "/lifeboat/checkpoint?dir=" + url.QueryEscape(dir)
	if err := a.call(ctx, u); err != nil {
		return Stats{}, fmt.Errorf("%w: workload %s: hook %s: %v", ErrCheckpoint, w.Spec.ID, u, err)
	}
	stats := Stats{Duration: time.Since(start)}
	if !leaveRunning {
		if err := p.Signal(syscall.SIGTERM); err != nil {
			return stats, fmt.Errorf("%w: stopping %s after its final checkpoint: %v", ErrCheckpoint, w.Spec.ID, err)
		}
	}
	return stats, nil
}

func (a *App) call(ctx context.Context, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("answered %d: %s", resp.StatusCode, body)
	}
	return nil
}

// None is the none mode: a stateless workload, restarted fresh anywhere.
type None struct{}

var _ Checkpointer = None{}

// Mode is fsm.ModeNone.
func (None) Mode() string { return fsm.ModeNone }

// Start launches the workload fresh; there is never anything to restore.
func (None) Start(ctx context.Context, w Workload, from string) (*os.Process, error) {
	return launch(w)
}

// Checkpoint takes nothing: ErrNoCheckpoint. Without leaveRunning it
// still stops the process, so a move works the same way in every mode.
func (None) Checkpoint(ctx context.Context, w Workload, p *os.Process, dir string, leaveRunning bool) (Stats, error) {
	if !leaveRunning {
		_ = p.Signal(syscall.SIGTERM)
	}
	return Stats{}, ErrNoCheckpoint
}
