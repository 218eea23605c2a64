package runtime

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkCRIUInitOverhead is what the workload init costs a checkpoint:
// a counting shell alone ("sh") and one under the init ("init") are moved
// on one host (a stopping dump, then a restore) in turns, b.N times each,
// so that the load of a shared machine falls on both alike. It reports
// per variant the medians of ms/dump and ms/restore, the image's bytes
// (B/image) and its tasks (processes and threads, tasks/image);
// docs/ARCHITECTURE.md quotes them. LIFEBOAT_BENCH_INITS adds other inits
// to compare ("name=/path/to/init,…", each run as `init -- sh -c …`).
// Run with a small -benchtime, e.g. -benchtime=11x.
func BenchmarkCRIUInitOverhead(b *testing.B) {
	c := needCRIU(b)
	vs := []*shellMoves{{name: "sh"}, {name: "init", init: needInit(b)}}
	for _, kv := range strings.Split(os.Getenv("LIFEBOAT_BENCH_INITS"), ",") {
		if name, path, ok := strings.Cut(kv, "="); ok {
			vs = append(vs, &shellMoves{name: name, init: path})
		}
	}
	for _, v := range vs {
		v.start(b, c)
	}
	b.ResetTimer()
	for i := range b.N {
		for j := range vs {
			vs[(i+j)%len(vs)].move(b, c)
		}
	}
	b.StopTimer()
	for _, v := range vs {
		b.ReportMetric(medianMS(v.dumps), v.name+"-ms/dump")
		b.ReportMetric(medianMS(v.restores), v.name+"-ms/restore")
		b.ReportMetric(float64(medianInt(v.sizes)), v.name+"-B/image")
		b.ReportMetric(float64(medianInt(v.tasks)), v.name+"-tasks/image")
	}
}

// shellMoves is one variant of the benchmark: its workload and figures.
type shellMoves struct {
	name, init      string
	w               Workload
	cur             *criuChild
	dumps, restores []time.Duration
	sizes, tasks    []int64
}

func (v *shellMoves) start(b *testing.B, c *CRIU) {
	v.w = shellWorkload(b, v.name, countScript, v.init)
	p, err := c.Start(context.Background(), v.w, "")
	if err != nil {
		b.Fatal(err)
	}
	v.cur = criuReap(b, p)
}

// move dumps the workload, stopping it, and restores it.
func (v *shellMoves) move(b *testing.B, c *CRIU) {
	ctx := context.Background()
	dir := b.TempDir()
	t0 := time.Now()
	if _, err := c.Checkpoint(ctx, v.w, v.cur.p, dir, false); err != nil {
		b.Fatal(err)
	}
	t1 := time.Now()
	v.cur.wait(b)
	size, n := imageSize(b, dir)
	t2 := time.Now()
	p, err := c.Start(ctx, v.w, dir)
	if err != nil {
		b.Fatal(err)
	}
	t3 := time.Now()
	v.cur = criuReap(b, p)
	v.dumps, v.restores = append(v.dumps, t1.Sub(t0)), append(v.restores, t3.Sub(t2))
	v.sizes, v.tasks = append(v.sizes, size), append(v.tasks, n)
	os.RemoveAll(dir)
}

// imageSize is the bytes of the checkpoint in dir and the tasks it holds
// (one core-*.img each).
func imageSize(tb testing.TB, dir string) (bytes, tasks int64) {
	tb.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			tb.Fatal(err)
		}
		bytes += info.Size()
		if ok, _ := filepath.Match("core-*.img", e.Name()); ok {
			tasks++
		}
	}
	return bytes, tasks
}

func medianInt(xs []int64) int64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
