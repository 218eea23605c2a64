package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/lifeboat/lifeboat/node/host"
)

func sampleReport() host.Report {
	return host.Report{
		Root: true, CRIUPath: "/usr/local/libexec/lifeboat/criu", CRIUVersion: "4.2.1", CRIUCheck: true,
		Checks: []host.Check{
			{Name: "root", OK: true, Detail: "euid 0"},
			{Name: "soft-dirty", OK: false, Detail: "not supported"},
		},
		Modes: []string{"app", "none", "criu"},
	}
}

func TestPrintDoctorTable(t *testing.T) {
	var b bytes.Buffer
	if err := printDoctor(&b, sampleReport(), "table"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := []string{
		"✓ root        euid 0",
		"✗ soft-dirty  not supported",
		"checkpoint modes this host can serve: app, none, criu",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), strings.Join(want, "\n"))
	}
}

func TestPrintDoctorJSON(t *testing.T) {
	var b bytes.Buffer
	if err := printDoctor(&b, sampleReport(), "json"); err != nil {
		t.Fatal(err)
	}
	var got host.Report
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v in %s", err, b.String())
	}
	if got.CRIUVersion != "4.2.1" || !slices.Equal(got.Modes, []string{"app", "none", "criu"}) || len(got.Checks) != 2 {
		t.Errorf("round trip: %+v", got)
	}
	if !strings.Contains(b.String(), `"criu_version": "4.2.1"`) {
		t.Errorf("json keys are not snake_case: %s", b.String())
	}
}

func TestDoctorBadUsage(t *testing.T) {
	for _, args := range [][]string{{"-o", "xml"}, {"extra"}} {
		cmd := newDoctorCmd()
		cmd.SetArgs(args)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		if err := cmd.Execute(); !errors.Is(err, errUsage) {
			t.Errorf("doctor %v: %v, want a usage error", args, err)
		}
	}
}
