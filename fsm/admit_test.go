package fsm

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestAdmitBounds: a new submission is refused, naming the field and the
// bound, when its interval is below the minimum (mode none has none), it
// asks for more than any host offers, or anything a caller controls
// (command, env, placement lists, the whole spec) is over its bound; at
// the bound it is admitted.
func TestAdmitBounds(t *testing.T) {
	base := WorkloadSpec{ID: "w", Command: []string{"/bin/true"}}.WithDefaults()
	if err := base.Admit(); err != nil {
		t.Fatalf("the defaults are refused: %v", err)
	}
	env := func(n, nameLen, valueLen int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m[fmt.Sprintf("K%0*d", max(nameLen-1, 1), i)] = strings.Repeat("v", valueLen)
		}
		return m
	}
	names := func(n, l int) []string { return repeat(strings.Repeat("n", l), n) }
	for name, tc := range map[string]struct {
		edit func(*WorkloadSpec)
		want string // "" means admitted
	}{
		"1ns interval":           {func(s *WorkloadSpec) { s.Checkpoint.Interval = 1 }, "checkpoint.interval"},
		"999ms interval":         {func(s *WorkloadSpec) { s.Checkpoint.Interval = Duration(999 * time.Millisecond) }, "minimum of 1s"},
		"1s interval":            {func(s *WorkloadSpec) { s.Checkpoint.Interval = Duration(time.Second) }, ""},
		"mode none, no interval": {func(s *WorkloadSpec) { s.Checkpoint = CheckpointPolicy{Mode: ModeNone, Interval: 1} }, ""},
		"2^63-1 MiB":             {func(s *WorkloadSpec) { s.Resources.MemoryMiB = 1<<63 - 1 }, "resources.memory_mib"},
		"64 TiB":                 {func(s *WorkloadSpec) { s.Resources.MemoryMiB = MaxMemoryMiB }, ""},
		"a million cores":        {func(s *WorkloadSpec) { s.Resources.CPUMillis = 1e9 }, "resources.cpu_millis"},

		"1024 args":        {func(s *WorkloadSpec) { s.Command = repeat("a", MaxArgs) }, ""},
		"1025 args":        {func(s *WorkloadSpec) { s.Command = repeat("a", MaxArgs+1) }, "command: has 1025 entries, over the limit of 1024"},
		"a 16 KiB arg":     {func(s *WorkloadSpec) { s.Command = []string{"a", strings.Repeat("x", MaxArgBytes)} }, ""},
		"a long arg":       {func(s *WorkloadSpec) { s.Command = []string{"a", strings.Repeat("x", MaxArgBytes+1)} }, "command[1]: is 16385 bytes, over the limit of 16384"},
		"an arg with NUL":  {func(s *WorkloadSpec) { s.Command = []string{"a", "b\x00c"} }, "command[1]: contains a NUL byte"},
		"256 variables":    {func(s *WorkloadSpec) { s.Env = env(MaxEnv, 8, 1) }, ""},
		"257 variables":    {func(s *WorkloadSpec) { s.Env = env(MaxEnv+1, 8, 1) }, "env: has 257 variables, over the limit of 256"},
		"a long name":      {func(s *WorkloadSpec) { s.Env = env(1, MaxEnvName+1, 1) }, "env: a name is 257 bytes, over the limit of 256"},
		"a 16 KiB value":   {func(s *WorkloadSpec) { s.Env = env(1, 4, MaxEnvValue) }, ""},
		"a long value":     {func(s *WorkloadSpec) { s.Env = env(1, 4, MaxEnvValue+1) }, `env["K000"]: the value is 16385 bytes, over the limit of 16384`},
		"a value with NUL": {func(s *WorkloadSpec) { s.Env = map[string]string{"K": "a\x00"} }, `env["K"]: the value contains a NUL byte`},
		"64 preferred":     {func(s *WorkloadSpec) { s.Placement.Prefer = names(MaxPlacementNames, 8) }, ""},
		"65 preferred":     {func(s *WorkloadSpec) { s.Placement.Prefer = names(MaxPlacementNames+1, 8) }, "placement.prefer: has 65 names, over the limit of 64"},
		"a long zone":      {func(s *WorkloadSpec) { s.Placement.AvoidZones = names(1, MaxNameBytes+1) }, "placement.avoid_zones[0]: is 254 bytes, over the limit of 253"},
		"65 clouds":        {func(s *WorkloadSpec) { s.Placement.Clouds = names(MaxPlacementNames+1, 3) }, "placement.clouds: has 65 names"},
		"a 64 KiB spec": {func(s *WorkloadSpec) {
			s.Env = env(8, 4, MaxEnvValue)
		}, "spec: is 131"},
	} {
		t.Run(name, func(t *testing.T) {
			s := base
			tc.edit(&s)
			if err := s.Validate(); err != nil {
				t.Fatalf("the case does not validate: %v", err)
			}
			err := s.Admit()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Admit: %v, want ErrInvalid naming %q", err, tc.want)
			}
		})
	}
}

// TestAdmitShowsNoSecret: a refusal never shows an env value (nor a
// command argument), since refusals are answered and logged.
func TestAdmitShowsNoSecret(t *testing.T) {
	const secret = "hunter2-do-not-show"
	for _, s := range []WorkloadSpec{
		{ID: "w", Command: []string{"a"}, Env: map[string]string{"PASSWORD": secret + strings.Repeat("x", MaxEnvValue)}},
		{ID: "w", Command: []string{"a"}, Env: map[string]string{"PASSWORD": secret + "\x00"}},
		{ID: "w", Command: []string{"a", "--password=" + secret + "\x00"}},
		{ID: "w", Command: []string{"a", "--password=" + secret + strings.Repeat("x", MaxArgBytes)}},
	} {
		err := s.WithDefaults().Admit()
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Fatalf("Admit = %v: want a refusal that does not show the secret", err)
		}
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}
