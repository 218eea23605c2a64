package transfer

import (
	"errors"
	"fmt"
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
	cases := []struct {
		sizes []int64
		chunk int64
		want  []segment
	}{
		{[]int64{0}, 4, nil},
		{[]int64{10, 0, 3}, 4, []segment{{0, 0, 0, 10}, {2, 0, 0, 3}}},
		{[]int64{2*segmentBytes + 1}, 1 << 20, []segment{
			{0, 0, 0, segmentBytes}, {0, 8, segmentBytes, segmentBytes}, {0, 16, 2 * segmentBytes, 1}}},
		{[]int64{3 * segmentBytes}, 3 * segmentBytes / 2, []segment{ // chunks larger than a segment
			{0, 0, 0, 3 * segmentBytes / 2}, {0, 1, 3 * segmentBytes / 2, 3 * segmentBytes / 2}}},
	}
	for _, tc := range cases {
		got := planSegments(tc.sizes, tc.chunk)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("planSegments(%v, %d) = %v, want %v", tc.sizes, tc.chunk, got, tc.want)
		}
	}
}
