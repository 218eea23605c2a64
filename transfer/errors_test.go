package transfer

import (
	"errors"
	"io/fs"
	"testing"
)

func TestCorruptError(t *testing.T) {
	cases := []struct {
		err  *CorruptError
		want string
	}{
		{&CorruptError{Checkpoint: "counter#3", Path: "files/pages-1.img", Chunk: 17, Problem: "sha256 mismatch"},
			"checkpoint counter#3: files/pages-1.img chunk 17: sha256 mismatch"},
		{&CorruptError{Checkpoint: "counter#3", Path: "files/x", Chunk: -1, Problem: "missing"},
			"checkpoint counter#3: files/x: missing"},
		{&CorruptError{Checkpoint: "counter#3", Chunk: -1, Problem: "gone", Err: fs.ErrNotExist},
			"checkpoint counter#3: gone"},
	}
	for _, tc := range cases {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
		if !errors.Is(tc.err, ErrCorrupt) || errors.Is(tc.err, ErrNotFound) {
			t.Errorf("%v: errors.Is is wrong", tc.err)
		}
	}
	if !errors.Is(cases[2].err, fs.ErrNotExist) {
		t.Error("Err is not unwrapped")
	}
}
