package nemesis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/lifeboat/lifeboat/jepsen/cluster"
	"github.com/lifeboat/lifeboat/jepsen/history"
)

// Schedule says which faults Run injects and when.
type Schedule struct {
	Nemeses []Nemesis
	// MinGap..MaxGap is the quiet time before each injection.
	MinGap, MaxGap time.Duration
	// MinHold..MaxHold is how long each fault lasts.
	MinHold, MaxHold time.Duration
	// Mixed lets two faults of different classes overlap; otherwise one
	// at a time.
	Mixed bool
	// Logger receives one line per injection and heal; nil discards.
	Logger *slog.Logger
}

// Validate names the first setting that is wrong.
func (s Schedule) Validate() error {
	switch {
	case len(s.Nemeses) == 0:
		return errors.New("nemesis: Schedule.Nemeses is empty")
	case s.MinGap < 0 || s.MaxGap < s.MinGap:
		return fmt.Errorf("nemesis: Schedule gap %v..%v: want 0 <= MinGap <= MaxGap", s.MinGap, s.MaxGap)
	case s.MinHold <= 0 || s.MaxHold < s.MinHold:
		return fmt.Errorf("nemesis: Schedule hold %v..%v: want 0 < MinHold <= MaxHold", s.MinHold, s.MaxHold)
	}
	return nil
}

// logger is the Logger, or one that discards, so Run logs
// unconditionally.
func (s Schedule) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// Bounds of Run, whatever the schedule says.
const (
	maxInjections = 10000           // injection attempts per Run
	healTimeout   = 2 * time.Minute // each heal, and HealAll at the end
)

// active is a fault in place and when to heal it.
type active struct {
	fault  *Fault
	class  string
	index  int // in the history
	healAt time.Time
}

// Run injects faults from sched into c until until (or ctx ends),
// recording each in hist (Start when its injection began, End when its
// heal finished). Nemeses that return ErrUnsupported or ErrTooFewHosts
// are dropped. Everything still in place is healed before Run returns,
// also when ctx ended. The error joins the failed heals; failed
// injections are only logged.
func Run(ctx context.Context, c *cluster.Cluster, sched Schedule, r *rand.Rand, hist *history.History, until time.Time) error {
	if err := sched.Validate(); err != nil {
		return err
	}
	log := sched.logger()
	pool := slices.Clone(sched.Nemeses)
	var live []*active
	var errs []error
	heal := func(a *active) {
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), healTimeout)
		defer cancel()
		err := a.fault.Heal(hctx)
		hist.Healed(a.index, hist.Since(time.Now()))
		log.Info("healed", "kind", a.fault.Kind, "detail", a.fault.Detail, "err", err)
		if err != nil {
			errs = append(errs, err)
		}
	}
	defer func() { // HealAll, whatever happened
		for _, a := range live {
			heal(a)
		}
	}()
	limit := 1
	if sched.Mixed {
		limit = 2
	}
	nextInject := time.Now().Add(between(r, sched.MinGap, sched.MaxGap))
	for attempts := 0; attempts < maxInjections && len(pool) > 0; {
		now := time.Now()
		if !now.Before(until) || ctx.Err() != nil {
			break
		}
		// Heal what is due.
		live = slices.DeleteFunc(live, func(a *active) bool {
			if now.Before(a.healAt) {
				return false
			}
			heal(a)
			return true
		})
		if !now.Before(nextInject) && len(live) < limit {
			attempts++
			pool = injectOne(ctx, c, r, hist, log, sched, pool, &live)
			nextInject = time.Now().Add(between(r, sched.MinGap, sched.MaxGap))
			continue
		}
		idle(ctx, until, nextInject, live, limit)
	}
	return errors.Join(errs...)
}

// idle sleeps until the next thing Run must do (an injection, a heal, the
// end) or ctx ends, so Run neither spins nor oversleeps a heal.
func idle(ctx context.Context, until, nextInject time.Time, live []*active, limit int) {
	wait := time.Until(until)
	if len(live) < limit {
		wait = min(wait, time.Until(nextInject))
	}
	for _, a := range live {
		wait = min(wait, time.Until(a.healAt))
	}
	select {
	case <-ctx.Done():
	case <-time.After(max(wait, time.Millisecond)):
	}
}

// injectOne injects a random nemesis of pool whose class is not in
// place yet and returns the pool, without nemeses found unusable.
func injectOne(ctx context.Context, c *cluster.Cluster, r *rand.Rand, hist *history.History, log *slog.Logger,
	sched Schedule, pool []Nemesis, live *[]*active) []Nemesis {
	var fits []int // indices in pool
	for i, n := range pool {
		if !slices.ContainsFunc(*live, func(a *active) bool { return a.class == classOf(n) }) {
			fits = append(fits, i)
		}
	}
	if len(fits) == 0 {
		return pool
	}
	at := fits[r.IntN(len(fits))]
	n := pool[at]
	start := time.Now()
	ictx, cancel := context.WithTimeout(ctx, healTimeout)
	f, err := n.Inject(ictx, c, r)
	cancel()
	if errors.Is(err, ErrUnsupported) || errors.Is(err, ErrTooFewHosts) {
		log.Warn("nemesis dropped", "kind", n.Kind(), "err", err)
		return slices.Delete(pool, at, at+1)
	}
	if err != nil {
		log.Warn("inject failed", "kind", n.Kind(), "err", err)
		return pool
	}
	i := hist.Fault(history.Fault{Kind: f.Kind, Start: hist.Since(start), Detail: f.Detail})
	hold := between(r, sched.MinHold, sched.MaxHold)
	log.Info("injected", "kind", f.Kind, "detail", f.Detail, "hold", hold)
	*live = append(*live, &active{fault: f, class: classOf(n), index: i, healAt: time.Now().Add(hold)})
	return pool
}

// classOf is n's class, or its kind if it names none.
func classOf(n Nemesis) string {
	if c, ok := n.(Classed); ok {
		return c.Class()
	}
	return n.Kind()
}

// between is a random duration in [lo, hi].
func between(r *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(r.Int64N(int64(hi-lo)+1))
}
