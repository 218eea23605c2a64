package fsm

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*WorkloadSpec)
		field string // "" when valid
	}{
		{"valid", func(*WorkloadSpec) {}, ""},
		{"no service", func(s *WorkloadSpec) { s.Service = nil }, ""},
		{"63 char id", func(s *WorkloadSpec) { s.ID = strings.Repeat("a", 63) }, ""},
		{"id with punctuation", func(s *WorkloadSpec) { s.ID = "0.a_b-c" }, ""},
		{"empty id", func(s *WorkloadSpec) { s.ID = "" }, "id"},
		{"64 char id", func(s *WorkloadSpec) { s.ID = strings.Repeat("a", 64) }, "id"},
		{"upper-case id", func(s *WorkloadSpec) { s.ID = "Counter" }, "id"},
		{"id starting with dash", func(s *WorkloadSpec) { s.ID = "-x" }, "id"},
		{"id with slash", func(s *WorkloadSpec) { s.ID = "a/b" }, "id"},
		{"no command", func(s *WorkloadSpec) { s.Command = nil }, "command"},
		{"empty program", func(s *WorkloadSpec) { s.Command = []string{""} }, "command"},
		{"env key with =", func(s *WorkloadSpec) { s.Env = map[string]string{"A=B": "c"} }, "env"},
		{"empty env key", func(s *WorkloadSpec) { s.Env = map[string]string{"": "c"} }, "env"},
		{"mode unset", func(s *WorkloadSpec) { s.Checkpoint.Mode = "" }, "checkpoint.mode"},
		{"mode unknown", func(s *WorkloadSpec) { s.Checkpoint.Mode = "dump" }, "checkpoint.mode"},
		{"mode app", func(s *WorkloadSpec) { s.Checkpoint.Mode = ModeApp }, ""},
		{"mode none, no interval", func(s *WorkloadSpec) { s.Checkpoint = CheckpointPolicy{Mode: ModeNone} }, ""},
		{"negative interval", func(s *WorkloadSpec) { s.Checkpoint.Interval = -1 }, "checkpoint.interval"},
		{"lazy pages, criu", func(s *WorkloadSpec) { s.Checkpoint.LazyPages = true }, ""},
		{"lazy pages, app", func(s *WorkloadSpec) { s.Checkpoint.Mode, s.Checkpoint.LazyPages = ModeApp, true }, "checkpoint.lazy_pages"},
		{"priority unset", func(s *WorkloadSpec) { s.Priority = "" }, "priority"},
		{"priority unknown", func(s *WorkloadSpec) { s.Priority = "urgent" }, "priority"},
		{"priority batch", func(s *WorkloadSpec) { s.Priority = PriorityBatch }, ""},
		{"negative memory", func(s *WorkloadSpec) { s.Resources.MemoryMiB = -1 }, "resources.memory_mib"},
		{"negative cpu", func(s *WorkloadSpec) { s.Resources.CPUMillis = -1 }, "resources.cpu_millis"},
		{"port 0", func(s *WorkloadSpec) { s.Service.Port = 0 }, "service.port"},
		{"port 65536", func(s *WorkloadSpec) { s.Service.Port = 65536 }, "service.port"},
		{"port 65535", func(s *WorkloadSpec) { s.Service.Port = 65535 }, ""},
		{"listen 0", func(s *WorkloadSpec) { s.Service.Listen = 0 }, ""},
		{"listen -1", func(s *WorkloadSpec) { s.Service.Listen = -1 }, "service.listen"},
		{"listen 65536", func(s *WorkloadSpec) { s.Service.Listen = 65536 }, "service.listen"},
		{"listen = port", func(s *WorkloadSpec) { s.Service.Listen = s.Service.Port }, "service.listen"},
		{"protocol empty", func(s *WorkloadSpec) { s.Service.Protocol = "" }, ""},
		{"protocol tcp", func(s *WorkloadSpec) { s.Service.Protocol = ProtocolTCP }, ""},
		{"protocol udp", func(s *WorkloadSpec) { s.Service.Protocol = "udp" }, "service.protocol"},
		{"negative slo", func(s *WorkloadSpec) { s.Service.SLO = -1 }, "service.slo"},
		{"standbys 0", func(s *WorkloadSpec) { s.Standbys = 0 }, ""},
		{"standbys 5", func(s *WorkloadSpec) { s.Standbys = 5 }, ""},
		{"standbys 6", func(s *WorkloadSpec) { s.Standbys = 6 }, "standbys"},
		{"standbys -1", func(s *WorkloadSpec) { s.Standbys = -1 }, "standbys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testSpec("counter")
			tt.edit(&s)
			err := s.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), ": "+tt.field+": ") {
				t.Fatalf("Validate: %v, want ErrInvalid naming %q", err, tt.field)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	err := WorkloadSpec{Standbys: 9}.Validate()
	for _, field := range []string{"id", "command", "checkpoint.mode", "priority", "standbys"} {
		if !strings.Contains(err.Error(), ": "+field+": ") {
			t.Errorf("error %q does not name %s", err, field)
		}
	}
}

func TestWithDefaults(t *testing.T) {
	in := WorkloadSpec{ID: "w", Command: []string{"x"}, Service: &Service{Port: 8080}}
	got := in.WithDefaults()
	want := WorkloadSpec{
		ID: "w", Command: []string{"x"},
		Checkpoint: CheckpointPolicy{Mode: ModeCRIU, Interval: Duration(30 * time.Second)},
		Priority:   PriorityNormal,
		Standbys:   1,
		Service:    &Service{Port: 8080, Protocol: ProtocolHTTP}, // no listen: no ingress
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("WithDefaults = %#v\nwant %#v", got, want)
	}
	if *in.Service != (Service{Port: 8080}) {
		t.Fatalf("WithDefaults changed the caller's service: %#v", *in.Service)
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("defaulted spec invalid: %v", err)
	}
	if again := got.WithDefaults(); !reflect.DeepEqual(again, got) {
		t.Fatalf("WithDefaults is not idempotent: %#v", again)
	}
}

func TestWithDefaultsKeepsSetFields(t *testing.T) {
	s := testSpec("w")
	s.Checkpoint = CheckpointPolicy{Mode: ModeApp, Interval: Duration(time.Minute)}
	s.Standbys = 3
	s.Service.Protocol = ProtocolTCP
	if got := s.WithDefaults(); !reflect.DeepEqual(got, s) {
		t.Fatalf("WithDefaults changed a complete spec: %#v", got)
	}
}

func TestPriorityRank(t *testing.T) {
	for p, want := range map[string]int{
		PriorityCritical: 0, PriorityHigh: 1, PriorityNormal: 2, PriorityBatch: 3, "": 4, "urgent": 4,
	} {
		if got := PriorityRank(p); got != want {
			t.Errorf("PriorityRank(%q) = %d, want %d", p, got, want)
		}
	}
}
