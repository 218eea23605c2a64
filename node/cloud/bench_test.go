package cloud

import (
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/node/cloud/emulate"
)

// BenchmarkNoticeDetection measures the time from the emulator showing a
// preemption to the notice arriving on Watch's channel, with the default
// poll interval (AWS and Azure poll, GCP long-polls). Each notice comes at
// a random point of the poll cycle.
func BenchmarkNoticeDetection(b *testing.B) {
	// What each watcher reads to learn that a Reset cleared the notice.
	cleared := map[string]string{
		AWS:   "/latest/meta-data/" + awsInstanceAction,
		GCP:   "/computeMetadata/v1/" + gcpPreempted,
		Azure: "/metadata/scheduledevents",
	}
	for _, cloud := range []string{AWS, GCP, Azure} {
		b.Run(cloud, func(b *testing.B) {
			clearEndpointVars(b)
			em, url := startEmulator(b, cloud)
			cfg := DefaultWatchConfig(cloud)
			cfg.Endpoint, cfg.DMIDir = url, b.TempDir()
			cfg.Logger = slog.New(slog.NewTextHandler(tWriter{b}, &slog.HandlerOptions{Level: slog.LevelWarn}))
			w, err := NewWatcher(cfg)
			if err != nil {
				b.Fatal(err)
			}
			out, _ := runWatch(b, w)
			if cloud == GCP {
				waitLongPolls(b, em, 2)
			} else {
				waitRequests(b, em, cleared[cloud], 1)
			}
			var total time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				if err := em.Notice(emulate.KindPreempt, time.Time{}); err != nil {
					b.Fatal(err)
				}
				if n := next(b, out, 5*time.Second); n.Kind != KindPreempt {
					b.Fatalf("got %+v, want a preemption", n)
				}
				total += time.Since(start)
				b.StopTimer()
				em.Reset()
				// The watcher must see the notice gone, or the same
				// notice again would rightly not be news.
				waitRequests(b, em, cleared[cloud], 1)
				// Not synchronisation: a random phase against the poll
				// clock, so that polling clouds show their mean delay
				// rather than their worst.
				time.Sleep(rand.N(cfg.PollInterval))
				b.StartTimer()
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/notice")
		})
	}
}
