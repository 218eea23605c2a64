package transfer

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
)

func TestParallelReturnsLowestFailure(t *testing.T) {
	for range 50 {
		var calls atomic.Int64
		err := parallel(100, func(i int, buf []byte) error {
			calls.Add(1)
			if len(buf) != readBufSize {
				return errors.New("no buffer")
			}
			if i == 7 || i == 8 || i == 60 {
				return fmt.Errorf("fail %d", i)
			}
			return nil
		})
		if err == nil || err.Error() != "fail 7" {
			t.Fatalf("err = %v, want fail 7", err)
		}
		if calls.Load() > 20 {
			t.Fatalf("%d calls after an early failure", calls.Load())
		}
	}
	if err := parallel(0, nil); err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	if err := parallel(1000, func(int, []byte) error { n.Add(1); return nil }); err != nil || n.Load() != 1000 {
		t.Fatalf("%d calls, %v", n.Load(), err)
	}
}

func TestPlanSegments(t *testing.T) {
	mib := int64(1 << 20)
	big := fixedChunks(2*segmentBytes+1, mib) // 16 + 1 chunks
	cases := []struct {
		chunks [][]int64
		want   string
	}{
		{[][]int64{nil}, "[]"},
		{[][]int64{{4, 4, 2}, nil, {3}}, "[{0 0 0 [4 4 2]} {2 0 0 [3]}]"},
		{[][]int64{big}, fmt.Sprint([]segment{{0, 0, 0, big[:8]}, {0, 8, segmentBytes, big[8:16]}, {0, 16, 2 * segmentBytes, big[16:]}})},
		{[][]int64{{3 * segmentBytes / 2, 3 * segmentBytes / 2}}, // chunks larger than a segment
			fmt.Sprint([]segment{{0, 0, 0, []int64{3 * segmentBytes / 2}}, {0, 1, 3 * segmentBytes / 2, []int64{3 * segmentBytes / 2}}})},
	}
	for _, tc := range cases {
		if got := fmt.Sprint(planSegments(tc.chunks)); got != tc.want {
			t.Errorf("planSegments(%v) = %v, want %v", tc.chunks, got, tc.want)
		}
	}
}

// TestCutChunksFollowContent: boundaries are content-defined on pages, so
// pages inserted at the front of a file shift the boundaries with them
// and almost every later chunk is unchanged; sizes stay within bounds.
func TestCutChunksFollowContent(t *testing.T) {
	data := make([]byte, 32<<20)
	_, _ = rand.NewChaCha8([32]byte{1}).Read(data)
	buf := make([]byte, readBufSize)
	cut := func(b []byte) []int64 {
		t.Helper()
		sizes, err := cutChunks(bytes.NewReader(b), int64(len(b)), DefaultChunkSize, buf)
		if err != nil {
			t.Fatal(err)
		}
		return sizes
	}
	hashes := func(b []byte, sizes []int64) map[[32]byte]bool {
		out := map[[32]byte]bool{}
		off := int64(0)
		for _, s := range sizes {
			out[sha256.Sum256(b[off:off+s])] = true
			off += s
		}
		return out
	}
	a := cut(data)
	var total int64
	for i, s := range a {
		total += s
		if s > DefaultChunkSize || i < len(a)-1 && (s < minChunkPages*pageSize || s%pageSize != 0) {
			t.Fatalf("chunk %d: %d bytes", i, s)
		}
	}
	if total != int64(len(data)) {
		t.Fatalf("chunks add up to %d, want %d", total, len(data))
	}
	avg := total / int64(len(a))
	if avg < 64<<10 || avg > 200<<10 {
		t.Fatalf("average chunk %d bytes, want about 128 KiB", avg)
	}
	shifted := append(make([]byte, 3*pageSize), data...) // three pages mapped below
	_, _ = rand.NewChaCha8([32]byte{2}).Read(shifted[:3*pageSize])
	before, after := hashes(data, a), hashes(shifted, cut(shifted))
	common := 0
	for h := range after {
		if before[h] {
			common++
		}
	}
	if share := float64(common) / float64(len(before)); share < 0.97 {
		t.Fatalf("after a shift of 3 pages only %.1f %% of the chunks match", 100*share)
	}
	// Zero pages never cut early: a zero file is cut at the maximum.
	for _, s := range cut(make([]byte, 4*DefaultChunkSize+100))[:4] {
		if s != DefaultChunkSize {
			t.Fatalf("zero file cut at %d bytes", s)
		}
	}
	// Tiny maxima fall back to fixed chunks.
	if got := fmt.Sprint(cutChunksFixed(t, 10, 4)); got != "[4 4 2]" {
		t.Fatalf("fixed chunks %s", got)
	}
}

func cutChunksFixed(t *testing.T, size, max int64) []int64 {
	sizes, err := cutChunks(bytes.NewReader(make([]byte, size)), size, max, make([]byte, readBufSize))
	if err != nil {
		t.Fatal(err)
	}
	return sizes
}
