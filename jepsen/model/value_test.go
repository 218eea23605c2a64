package model

import (
	"testing"

	"github.com/lifeboat/lifeboat/jepsen/history"
)

func TestIncrValueParses(t *testing.T) {
	op := history.Op{Kind: history.KindIncr, Value: 42, Tag: "c3-7"}
	v := IncrValue(op)
	if v != "42@c3-7" {
		t.Fatalf("IncrValue = %q; want 42@c3-7", v)
	}
	count, tag, ok := ParseValue(v)
	if !ok || count != 42 || tag != "c3-7" {
		t.Fatalf("ParseValue(%q) = %d, %q, %t", v, count, tag, ok)
	}
}

func TestParseValue(t *testing.T) {
	for _, tc := range []struct {
		in    string
		count int64
		tag   string
		ok    bool
	}{
		{"1@a", 1, "a", true},
		{"10@a@b", 10, "a@b", true},
		{"0@", 0, "", true},
		{"stale", 0, "", false},
		{"x@a", 0, "", false},
		{"@a", 0, "", false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			count, tag, ok := ParseValue(tc.in)
			if count != tc.count || tag != tc.tag || ok != tc.ok {
				t.Fatalf("ParseValue(%q) = %d, %q, %t; want %d, %q, %t", tc.in, count, tag, ok, tc.count, tc.tag, tc.ok)
			}
		})
	}
}
