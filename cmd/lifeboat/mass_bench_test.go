package main

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// BenchmarkMassEvacuation: four agents in their own namespaces and zones
// (as in TestMassNoticeEvacuatesInPriorityOrder); N app-mode counters of
// mixed priority run on one host, each with a standby and a non-zero
// count; one preemption notice on that host's AWS metadata emulator. It
// reports, from the notice to each workload first seen running on its new
// holder (the API watched every 100 ms): the median and the largest, the
// whole evacuation, and workloads per second. The notice gives the host
// ten minutes, so that the deadline never changes what is measured; the
// aim is 500 small workloads off one host within GCP's 30 s. Run it with
// -benchtime 1x: every iteration builds a new cluster.
func BenchmarkMassEvacuation(b *testing.B) {
	for _, n := range []int{50, 500} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			counter := buildMassCounter(b)
			var med, most, all time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				mc := startMassCluster(b, counter, 4)
				ids, prio := massWorkloads(n, rand.New(rand.NewPCG(uint64(n), uint64(i))))
				mc.submit(ids, prio)
				mc.waitPlaced(ids, time.Duration(n)*time.Second+2*time.Minute)
				want := map[string]int{}
				var mu sync.Mutex
				mc.pool(len(ids), 16, func(i int) {
					n := mc.hit(mc.ip[mc.doomed], ids[i])
					mu.Lock()
					want[ids[i]] = n
					mu.Unlock()
				})
				b.StartTimer()
				res := mc.evacuate(ids, 10*time.Minute, time.Duration(n)*time.Second+3*time.Minute)
				b.StopTimer()
				res.log(b, fmt.Sprintf("%d workloads", n))
				mc.checkCounts(res, want)
				m, x := res.stats()
				med, most, all = med+m, most+x, all+x
				mc.close()
			}
			b.ReportMetric(float64(med.Milliseconds())/float64(b.N), "ms/workload-median")
			b.ReportMetric(float64(most.Milliseconds())/float64(b.N), "ms/workload-max")
			b.ReportMetric(all.Seconds()/float64(b.N), "s/all")
			b.ReportMetric(float64(n*b.N)/all.Seconds(), "workloads/s")
		})
	}
}
