package main

import (
	"errors"
	"strings"
	"testing"
)

func TestSourcesPrecedence(t *testing.T) {
	file := writeFile(t, "agent.yaml", "zone: from-file\nregion: from-file\nvoters: 5\njoin: [10.0.0.1, 10.0.0.2]\n")
	env := map[string]string{"LIFEBOAT_REGION": "from-env", "LIFEBOAT_CONFIG": file}
	cmd := newAgentCmd()
	if err := cmd.ParseFlags([]string{"--zone", "from-flag"}); err != nil {
		t.Fatal(err)
	}
	if err := applySources(cmd, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	f := cmd.Flags()
	for flag, want := range map[string]string{"zone": "from-flag", "region": "from-env", "voters": "5", "join": "[10.0.0.1,10.0.0.2]"} {
		if got := f.Lookup(flag).Value.String(); got != want {
			t.Errorf("%s = %q, want %q", flag, got, want)
		}
	}
}

func TestConfigFileErrorsNameTheKey(t *testing.T) {
	cmd := newAgentCmd()
	file := writeFile(t, "agent.yaml", "http-port: not-a-port\n")
	if err := cmd.ParseFlags([]string{"--config", file}); err != nil {
		t.Fatal(err)
	}
	err := applySources(cmd, func(string) string { return "" })
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), `key "http-port"`) {
		t.Fatalf("err = %v, want a usage error naming http-port", err)
	}
}
