package fsm

import (
	"errors"
	"strings"
	"testing"
)

func TestSentinelsAreDistinctAndNamed(t *testing.T) {
	all := []error{ErrExists, ErrNotFound, ErrStaleEpoch, ErrLeaseValid, ErrNoPending, ErrInvalid, ErrUnknownCommand, ErrMalformed}
	seen := map[string]bool{}
	for i, e := range all {
		msg := e.Error()
		if !strings.HasPrefix(msg, "fsm: ") || strings.ToLower(msg) != msg || seen[msg] {
			t.Errorf("sentinel %q: want a unique lowercase message starting with \"fsm: \"", msg)
		}
		seen[msg] = true
		for j, o := range all {
			if i != j && errors.Is(e, o) {
				t.Errorf("%v matches %v", e, o)
			}
		}
	}
}
