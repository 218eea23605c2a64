package host

import (
	"slices"
	"testing"
)

func TestMissingCaps(t *testing.T) {
	cases := []struct {
		status string
		want   []string
	}{
		{"Name:\tx\nCapEff:\t000001ffffffffff\n", nil},
		{"CapEff:\t000001fffeffffff\n", []string{"CAP_SYS_RESOURCE"}},
		{"CapEff:\t0000000000000000\n", []string{"CAP_NET_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_ADMIN", "CAP_SYS_RESOURCE"}},
		{"CapEff:\tzz\n", nil},
		{"", nil},
	}
	for _, tc := range cases {
		if got := missingCaps([]byte(tc.status)); !slices.Equal(got, tc.want) {
			t.Errorf("missingCaps(%q) = %v, want %v", tc.status, got, tc.want)
		}
	}
}

func TestTruncateKeepsRunesWhole(t *testing.T) {
	if got := truncate("ab✓cd", 3); got != "ab…" {
		t.Errorf("truncate = %q", got)
	}
	if got := truncate("abc", 3); got != "abc" {
		t.Errorf("truncate = %q", got)
	}
}
