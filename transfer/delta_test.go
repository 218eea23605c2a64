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

// dirtyPages overwrites, with fresh random bytes, frac of data's 4 KiB
// pages, scattered over dirty regions: a random eighth of the chunks, in
// which 80% of the pages change. A process's dirty pages cluster like
// this in its working set; spread uniformly instead, 10% of the pages
// would touch 1-0.9^64 ≈ 99.9% of the 256 KiB chunks, and a delta by
// chunk would save nothing. It returns the bytes changed.
func dirtyPages(data []byte, seed uint64) int {
	const page = 4096
	perChunk := DefaultChunkSize / page
	rng := rand.New(rand.NewPCG(seed, seed))
	chunks := len(data) / DefaultChunkSize
	regions := rng.Perm(chunks)[:chunks/8]
	pages := make([]int, 0, len(regions)*perChunk)
	for _, c := range regions {
		for p := range perChunk {
			pages = append(pages, c*perChunk+p)
		}
	}
	rng.Shuffle(len(pages), func(i, j int) { pages[i], pages[j] = pages[j], pages[i] })
	pages = pages[:len(data)/page/10] // 10% of all pages
	for i, p := range pages {
		fillRandom(data[p*page:(p+1)*page], seed<<32|uint64(i))
	}
	return len(pages) * page
}

// TestDeltaAtScale: the receiver holds a 512 MiB checkpoint; the next
// one differs in 10% of its bytes, in scattered 4 KiB pages; the send
// ships at most 15% of the bytes.
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
	changed := dirtyPages(data, 2)
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
