package placement

import "time"

// Throughput is the measured move throughput: a moving average over the
// moves that finished, zero until one did. Its zero value is ready; it is
// a value, not safe for concurrent use (its owner locks around it).
type Throughput struct {
	bps float64 // bytes/s; 0 until a move measured it
}

// minMeasured is the smallest move that tells the throughput: a smaller
// one's time is all overhead.
const minMeasured = 8 << 20

// Measured folds one finished move of bytes that took took, of which
// overhead was not transfer, into the average.
func (t *Throughput) Measured(bytes int64, took, overhead time.Duration) {
	if bytes < minMeasured {
		return
	}
	d := max(took-overhead, 10*time.Millisecond)
	bps := float64(bytes) / d.Seconds()
	if t.bps == 0 {
		t.bps = bps
	} else {
		t.bps = 0.7*t.bps + 0.3*bps
	}
}

// Estimator returns how long moving a workload is expected to take: the
// overhead plus its bytes at the measured throughput, or at assumed
// (bytes/s) until a move has measured it. Its bytes are its latest
// checkpoint's; without one, its memory when a checkpoint dumps it (CRIU),
// and nothing otherwise (app and none: their state is what the
// application writes, not its memory).
func (t Throughput) Estimator(assumed float64, overhead time.Duration) func(Workload) time.Duration {
	bps := t.bps
	if bps <= 0 {
		bps = assumed
	}
	return func(w Workload) time.Duration {
		var bytes int64
		if w.DumpsMemory {
			bytes = w.Request.Need.MemoryMiB << 20
		}
		if w.Checkpoint != nil {
			bytes = w.Checkpoint.Bytes
		}
		return overhead + time.Duration(float64(bytes)/bps*float64(time.Second))
	}
}
