package fsm

import (
	"slices"
	"testing"
)

func TestKeepLast(t *testing.T) {
	tests := []struct {
		in   []int
		n    int
		want []int
	}{
		{nil, 2, nil},
		{[]int{1}, 2, []int{1}},
		{[]int{1, 2}, 2, []int{1, 2}},
		{[]int{1, 2, 3, 4}, 2, []int{3, 4}},
	}
	for _, tt := range tests {
		if got := keepLast(slices.Clone(tt.in), tt.n); !slices.Equal(got, tt.want) {
			t.Errorf("keepLast(%v, %d) = %v, want %v", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestKeepLastClearsDropped(t *testing.T) {
	a, b, c := new(int), new(int), new(int)
	s := []*int{a, b, c}
	got := keepLast(s, 1)
	if len(got) != 1 || got[0] != c || s[0] != nil || s[1] != nil {
		t.Fatalf("keepLast kept %v, backing array %v: want [c] and dropped pointers cleared", got, s)
	}
}
