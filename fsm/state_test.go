package fsm

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestDurationJSON(t *testing.T) {
	for _, d := range []Duration{0, Duration(30 * time.Second), Duration(1500 * time.Millisecond), Duration(-time.Hour)} {
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if want := `"` + time.Duration(d).String() + `"`; string(b) != want {
			t.Errorf("Marshal(%v) = %s, want %s", time.Duration(d), b, want)
		}
		var got Duration
		if err := json.Unmarshal(b, &got); err != nil || got != d {
			t.Errorf("round trip of %v = %v, %v", time.Duration(d), time.Duration(got), err)
		}
	}
}

func TestDurationJSONReads(t *testing.T) {
	tests := []struct {
		in      string
		want    Duration
		wantErr bool
	}{
		{`"30s"`, Duration(30 * time.Second), false},
		{`"1h2m"`, Duration(time.Hour + 2*time.Minute), false},
		{`30000000000`, Duration(30 * time.Second), false},
		{`"30"`, 0, true},
		{`"soon"`, 0, true},
		{`1.5`, 0, true},
		{`true`, 0, true},
	}
	for _, tt := range tests {
		var got Duration
		err := json.Unmarshal([]byte(tt.in), &got)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v, error %v", tt.in, time.Duration(got), err, time.Duration(tt.want), tt.wantErr)
		}
	}
}

func TestDurationYAML(t *testing.T) {
	in := CheckpointPolicy{Mode: ModeCRIU, Interval: Duration(90 * time.Second)}
	b, err := yaml.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := "mode: criu\ninterval: 1m30s\n"; string(b) != want {
		t.Fatalf("yaml = %q, want %q", b, want)
	}
	var got CheckpointPolicy
	if err := yaml.Unmarshal(b, &got); err != nil || got != in {
		t.Fatalf("round trip = %#v, %v; want %#v", got, err, in)
	}
	if err := yaml.Unmarshal([]byte("interval: soon\n"), &got); err == nil {
		t.Fatal("interval: soon was accepted")
	}
	if err := yaml.Unmarshal([]byte("interval: [1]\n"), &got); err == nil {
		t.Fatal("interval: [1] was accepted")
	}
}

func TestSpecYAMLFromDesign(t *testing.T) {
	const doc = `
id: counter
command: ["/usr/local/bin/counter", "--port", "8080"]
env: {MODE: prod}
checkpoint: {mode: criu, interval: 30s}
priority: critical
resources: {memory_mib: 64, cpu_millis: 500}
service: {port: 8080, listen: 18080, protocol: http, slo: 100ms}
placement: {prefer: [n1], avoid_zones: [], clouds: [aws, gcp]}
`
	var s WorkloadSpec
	if err := yaml.Unmarshal([]byte(doc), &s); err != nil {
		t.Fatal(err)
	}
	want := testSpec("counter")
	want.Standbys = 0
	s.Placement.AvoidZones = nil // [] in the document
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("parsed %#v\nwant %#v", s, want)
	}
	if err := s.WithDefaults().Validate(); err != nil {
		t.Fatalf("the design's example spec is invalid: %v", err)
	}
}
