package placement

import (
	"testing"
	"time"
)

// The estimate uses the latest checkpoint's size when there is one, and
// the measured throughput once a move has measured it.
func TestThroughputEstimator(t *testing.T) {
	var tp Throughput
	w := planWorkload("w", "normal", "d", 100, 0) // 100 MiB
	w.DumpsMemory = true                          // CRIU dumps the memory
	if got := (Throughput{}).Estimator(100e6, 0)(planWorkload("app", "normal", "d", 100, 0)); got != 0 {
		t.Fatalf("an app-mode workload without a checkpoint: %v, want only the overhead", got)
	}
	if got := tp.Estimator(100e6, 0)(w); got < 1040*time.Millisecond || got > 1050*time.Millisecond {
		t.Fatalf("100 MiB at the assumed 100 MB/s: %v", got)
	}
	w.Checkpoint = &Checkpoint{Bytes: 10e6}
	if got := tp.Estimator(100e6, 0)(w); got != 100*time.Millisecond {
		t.Fatalf("10 MB checkpoint: %v", got)
	}
	if got := tp.Estimator(100e6, 300*time.Millisecond)(w); got != 400*time.Millisecond {
		t.Fatalf("10 MB checkpoint plus 300 ms overhead: %v", got)
	}
	tp.Measured(1000, 10*time.Second, 0) // too small to tell the throughput: ignored
	if got := tp.Estimator(100e6, 0)(w); got != 100*time.Millisecond {
		t.Fatalf("after a tiny move: %v", got)
	}
	tp.Measured(50e6, 1500*time.Millisecond, 500*time.Millisecond) // 50 MB/s measured
	if got := tp.Estimator(100e6, 0)(w); got != 200*time.Millisecond {
		t.Fatalf("10 MB at the measured 50 MB/s: %v", got)
	}
	tp.Measured(100e6, 1*time.Second, 0) // 100 MB/s: the average moves 30 % towards it
	if got := tp.Estimator(100e6, 0)(w); got < 153*time.Millisecond || got > 154*time.Millisecond {
		t.Fatalf("10 MB at 0.7·50 + 0.3·100 = 65 MB/s: %v", got)
	}
}
