package transfer

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// needFree skips (fails under CI=true) when dir's file system has less
// than n bytes free.
func needFree(t *testing.T, dir string, n uint64) {
	t.Helper()
	var st unix.Statfs_t
	must(t, unix.Statfs(dir, &st))
	if free := st.Bavail * uint64(st.Bsize); free < n {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %s has %d MiB free, the test needs %d", dir, free>>20, n>>20)
		}
		t.Skipf("%s has %d MiB free, the test needs %d", dir, free>>20, n>>20)
	}
}

// sealOne seals in store a checkpoint of workload as seq holding one file,
// pages-1.img, with data.
func sealOne(t *testing.T, store *Store, workload string, seq uint64, data []byte) *Checkpoint {
	t.Helper()
	st, err := store.Stage(workload)
	must(t, err)
	defer st.Abort()
	must(t, os.WriteFile(filepath.Join(st.Dir, "pages-1.img"), data, 0o600))
	c, err := store.Seal(st, info(workload, seq))
	must(t, err)
	return c
}

// evolve changes data the way a process changes between two
// checkpoints: it rewrites 10 % of the bytes in the runs of pages its
// working set touches (2 MiB each, scattered), and three pages appear
// below them (the process mapped memory at a lower address, which shifts
// everything after it in CRIU's page image). It returns the new image and
// the bytes changed. Spread uniformly over single pages instead, 10 % of
// the pages would touch nearly every chunk, and no chunk-level delta could
// save anything.
func evolve(data []byte, seed uint64) ([]byte, int) {
	const page, run = 4096, 2 << 20
	rng := rand.New(rand.NewPCG(seed, seed))
	slots := len(data) / run
	changed := 0
	for i, r := range rng.Perm(slots)[:len(data)/10/run] {
		fillRandom(data[r*run:(r+1)*run], seed<<32|uint64(i))
		changed += run
	}
	inserted := make([]byte, 3*page)
	fillRandom(inserted, seed<<32|0xffff)
	at := (1 << 20) / page * page
	out := make([]byte, 0, len(data)+len(inserted))
	out = append(append(append(out, data[:at]...), inserted...), data[at:]...)
	return out, changed + len(inserted)
}

// TestDeltaAtScale: the receiver holds a 512 MiB checkpoint; in the next
// one 10 % of the bytes changed and a few pages shifted everything after
// them (evolve); the send ships at most 15 % of the bytes.
func TestDeltaAtScale(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 512 MiB checkpoints; not in -short")
	}
	const size = 512 << 20
	dir := t.TempDir()
	needFree(t, dir, 5*size)
	start := time.Now()
	p := newTestPKI(t)
	src, err := OpenStore(filepath.Join(dir, "src"), 0)
	must(t, err)
	dst, err := OpenStore(filepath.Join(dir, "dst"), 0)
	must(t, err)
	data := make([]byte, size)
	fillRandom(data, 1)
	ck1 := sealOne(t, src, "big", 1, data)
	if held := sealOne(t, dst, "big", 1, data); held.Digest != ck1.Digest {
		t.Fatalf("the receiver's checkpoint 1 has digest %s, the sender's %s", held.Digest, ck1.Digest)
	}
	data, changed := evolve(data, 2)
	ck2 := sealOne(t, src, "big", 2, data)
	data = nil
	t.Logf("setup: two checkpoints of %d MiB, %d MiB changed, in %v", size>>20, changed>>20, time.Since(start).Round(time.Millisecond))

	srv := startServer(t, p, dst, nil)
	cl := newTestClient(t, p, nil, nil)
	stats, err := cl.Send(background(t), srv.Addr().String(), "receiver", ck2)
	if err != nil {
		t.Fatal(err)
	}
	share := float64(stats.BytesSent) / float64(stats.Bytes)
	t.Logf("changed %.1f%% of the bytes; sent %d of %d chunks, %d MiB = %.1f%% of the bytes, in %v (shipping %v)",
		100*float64(changed)/size, stats.ChunksSent, stats.Chunks, stats.BytesSent>>20, 100*share,
		stats.Took.Round(time.Millisecond), stats.DataTook.Round(time.Millisecond))
	if share > 0.15 {
		t.Errorf("sent %.1f%% of the bytes, more than 15%%", 100*share)
	}
	if stats.Resumed || stats.Attempts != 1 {
		t.Errorf("stats %+v", stats)
	}
	sameCheckpoint(t, dst, ck2)
	noStaging(t, dst)
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}
