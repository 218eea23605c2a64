package main

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/internal/netns"
	"github.com/lifeboat/lifeboat/node/api"
	"github.com/lifeboat/lifeboat/node/cloud/emulate"
)

// TestNoticeEvacuatesToAnotherZone, for each cloud: three agents in their
// own network namespaces, each reading its own metadata emulator (served
// by the test on the switch) through the SDK's standard endpoint variable.
// The emulator of the counter's holder issues a preemption notice: the
// counter moves to a host in another zone, its count continues, its epoch
// grows, the old holder no longer serves it and its epoch is tombstoned
// (a result under it gets 409).
func TestNoticeEvacuatesToAnotherZone(t *testing.T) {
	needCRIU(t)
	counter := buildCounter(t)
	for i, c := range []string{emulate.AWS, emulate.GCP, emulate.Azure} {
		t.Run(c, func(t *testing.T) {
			noticeEvacuates(t, c, counter, 18090+i)
		})
	}
}

func noticeEvacuates(t *testing.T, cloudName, counter string, port int) {
	if _, err := netns.CleanupStale(netns.Prefix + "ev"); err != nil {
		t.Logf("stale namespaces: %v", err)
	}
	sw, err := netns.NewSwitch("evsw", "10.233.0.254", 24)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })
	names := []string{"e1", "e2", "e3"}
	var agents []*localAgent
	emus := map[string]*emulate.Emulator{}
	for i, name := range names {
		ns, err := netns.New("ev" + name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ns.Close() })
		ip := fmt.Sprintf("10.233.0.%d", i+1)
		if err := sw.Plug(ns, ip); err != nil {
			t.Fatal(err)
		}
		cfg := emulate.DefaultConfig(cloudName)
		cfg.Zone = emulate.DefaultZone(cloudName, cfg.Region)
		cfg.Zone = cfg.Zone[:len(cfg.Zone)-1] + string(rune('a'+i))
		if cloudName == emulate.Azure {
			cfg.Zone = fmt.Sprint(i + 1)
		}
		cfg.Name = name
		emu, err := emulate.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		url, err := emu.Start("10.233.0.254:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { emu.Close() })
		emus[name] = emu
		agents = append(agents, &localAgent{Name: name, IP: ip, Zone: "",
			Args: []string{"--bootstrap-expect", "3", "--cloud", "auto"},
			Env:  []string{emulate.EnvLine(cloudName, url)},
			Wrap: func(bin string, args ...string) *exec.Cmd { return ns.Command(bin, args...) }})
	}
	lc := &localCluster{bin: testBin, dir: t.TempDir()}
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, lc)
		}
		lc.stopAll()
	})
	for _, a := range agents {
		if err := lc.start(a, agents[0].IP+":7946"); err != nil {
			t.Fatal(err)
		}
	}
	url := agents[0].URL()
	st, err := waitStatus(ctxFor(t, 45*time.Second), url, wantFormed(3))
	if err != nil {
		t.Fatal(err)
	}
	zones := map[string]string{}
	for _, m := range st.Members {
		zones[m.Name] = m.Zone
		if m.Cloud != cloudName {
			t.Fatalf("member %s reports cloud %q, want %s from the metadata", m.Name, m.Cloud, cloudName)
		}
	}
	spec := fmt.Sprintf("id: counter\ncommand: [%s, --port, \"%d\", --ballast-mib, \"16\"]\n"+
		"checkpoint: {mode: criu, interval: 1h}\nservice: {port: %d}\nresources: {memory_mib: 64}\n"+
		"placement: {prefer: [e1]}\n", counter, port, port)
	c := envClient(url)
	if _, err := c.Submit(context.Background(), []byte(spec), "application/yaml"); err != nil {
		t.Fatal(err)
	}
	w := waitWorkload(t, c, "counter", func(w api.Workload) bool { return w.State == "running" && w.Holder == "e1" && len(w.Standbys) == 1 })
	for want := 1; want <= 2; want++ {
		if got := countAt(t, fmt.Sprintf("10.233.0.1:%d", port)); got != want {
			t.Fatalf("GET / = %d, want %d", got, want)
		}
	}
	if _, err := c.Checkpoint(ctxFor(t, time.Minute), "counter"); err != nil {
		t.Fatal(err)
	}
	countAt(t, fmt.Sprintf("10.233.0.1:%d", port)) // 3: in the final checkpoint

	noticeAt := time.Now()
	if err := emus["e1"].Notice("preempt", noticeAt.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	moved := waitWorkload(t, c, "counter", func(w api.Workload) bool { return w.Holder != "e1" && w.Holder != "" && w.State == "running" })
	t.Logf("%s notice to running on %s (zone %s): %v", cloudName, moved.Holder, zones[moved.Holder], time.Since(noticeAt).Round(time.Millisecond))
	if zones[moved.Holder] == zones["e1"] || moved.Epoch <= w.Epoch {
		t.Fatalf("moved to %s in zone %s (e1 in %s), epoch %d after %d", moved.Holder, zones[moved.Holder], zones["e1"], moved.Epoch, w.Epoch)
	}
	ip := map[string]string{"e2": "10.233.0.2", "e3": "10.233.0.3"}[moved.Holder]
	if got := countAt(t, fmt.Sprintf("%s:%d", ip, port)); got != 4 {
		t.Fatalf("after the move GET / = %d, want 4: the count continues", got)
	}
	if resp, err := (&http.Client{Timeout: time.Second}).Get(fmt.Sprintf("http://10.233.0.1:%d/value", port)); err == nil {
		resp.Body.Close()
		t.Fatal("the doomed host still serves the counter")
	}
	if _, err := c.AppendResult(context.Background(), "counter", w.Epoch, "late"); err == nil || !strings.Contains(err.Error(), "stale") {
		t.Fatalf("a result under the old epoch %d: %v, want a stale-epoch refusal", w.Epoch, err)
	}
	if cloudName == emulate.Azure {
		deadline := time.Now().Add(10 * time.Second)
		for len(emus["e1"].Acks()) == 0 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if len(emus["e1"].Acks()) == 0 {
			t.Fatal("the evacuated Azure host never acknowledged its Preempt event")
		}
	}
}
