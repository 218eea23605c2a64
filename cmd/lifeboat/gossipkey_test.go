package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/gossip"
	"github.com/lifeboat/lifeboat/node/api"
)

// keyAgents are three agents on loopback addresses no other test uses.
func keyAgents() []*localAgent {
	var out []*localAgent
	for i, z := range []string{"a", "b", "c"} {
		out = append(out, &localAgent{
			Name: fmt.Sprintf("k%d", i+1), IP: fmt.Sprintf("127.0.0.%d", 161+i), Zone: z,
			Args: []string{"--bootstrap-expect", "3", "--api-token", writeToken, "--api-read-token", readToken},
		})
	}
	return out
}

// cli runs the binary against agent a's API with the write token and
// returns its stdout; a failure ends the test.
func cli(t *testing.T, a *localAgent, args ...string) string {
	t.Helper()
	cmd := exec.Command(testBin, append(args, "--addr", a.URL())...)
	cmd.Env = append(os.Environ(), "LIFEBOAT_API_TOKEN="+writeToken)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("lifeboat %s: %v: %s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func keyList(t *testing.T, a *localAgent) api.GossipKeys {
	t.Helper()
	var res api.GossipKeys
	if err := json.Unmarshal([]byte(cli(t, a, "gossip", "keys", "list", "-o", "json")), &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// logSize is how long the agent's log is now: waitLog from there sees only
// what a restart writes.
func logSize(a *localAgent) int64 {
	st, err := os.Stat(filepath.Join(a.dir, "agent.log"))
	if err != nil {
		return 0
	}
	return st.Size()
}

// waitLog waits until the agent's log, from byte from on, holds every
// one of want on one line.
func waitLog(t *testing.T, a *localAgent, from int64, timeout time.Duration, want ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(filepath.Join(a.dir, "agent.log"))
		if int64(len(b)) > from {
			for _, line := range strings.Split(string(b[from:]), "\n") {
				if containsAll(line, want) {
					return
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not log a line with %q within %v", a.Name, want, timeout)
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func listed(st api.Status, name string) bool {
	for _, m := range st.Members {
		if m.Name == name {
			return true
		}
	}
	return false
}

// TestGossipKeyRotationAcrossAgents: real agents on loopback. One with
// another gossip key cannot join; the key is rotated through the CLI
// (install, use, remove) with the cluster formed throughout; an agent
// restarted after the rotation rejoins with the keyring it kept, and a
// new agent issued from the CA's new key joins.
func TestGossipKeyRotationAcrossAgents(t *testing.T) {
	agents := keyAgents()
	lc := startCluster(t, agents)
	k1, k2, k3 := agents[0], agents[1], agents[2]
	if _, err := waitStatus(ctxFor(t, 60*time.Second), k1.URL(), wantFormed(3)); err != nil {
		t.Fatal(err)
	}

	t.Run("another key cannot join", func(t *testing.T) {
		other, _ := gossip.NewKey()
		rogue := &localAgent{Name: "rogue", IP: "127.0.0.169", Zone: "d",
			Args: []string{"--api-token", writeToken, "--gossip-key", gossip.EncodeKey(other)}}
		if err := lc.start(rogue, k1.IP); err != nil {
			t.Fatal(err)
		}
		defer rogue.signal(syscall.SIGKILL, time.Second)
		waitLog(t, k1, 0, 30*time.Second, "no installed keys could decrypt the message")
		for _, a := range agents {
			if st, err := waitStatus(ctxFor(t, 5*time.Second), a.URL(), wantFormed(3)); err != nil || listed(st, "rogue") {
				t.Fatalf("%s: %v; lists the rogue: %v", a.Name, err, listed(st, "rogue"))
			}
		}
	})

	oldFP := gossip.Fingerprint(readKey(t, filepath.Join(lc.dir, "ca", gossip.KeyFile)))
	mustRun(t, "ca", "gossip-key", "--dir", filepath.Join(lc.dir, "ca"), "--replace")
	newKeyFile := filepath.Join(lc.dir, "ca", gossip.KeyFile)
	newFP := gossip.Fingerprint(readKey(t, newKeyFile))
	cli(t, k1, "gossip", "keys", "install", "--file", newKeyFile)
	cli(t, k2, "gossip", "keys", "use", newFP)
	waitFormedEverywhere(t, agents, 3)
	cli(t, k3, "gossip", "keys", "remove", oldFP)
	res := keyList(t, k2)
	if res.Members != 3 || len(res.Keys) != 1 || res.Keys[0].Fingerprint != newFP || res.Keys[0].Installed != 3 || res.Keys[0].Primary != 3 {
		t.Fatalf("after the rotation: %+v; want only %s, on 3 members", res, newFP)
	}
	if out := cli(t, k1, "gossip", "keys", "list"); strings.Contains(out, gossip.EncodeKey(readKey(t, newKeyFile))) {
		t.Fatal("the list shows the key")
	}
	waitFormedEverywhere(t, agents, 3)

	t.Run("restart after the rotation", func(t *testing.T) {
		if err := k2.signal(syscall.SIGTERM, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		from := logSize(k2)
		if err := lc.start(k2, k1.IP); err != nil {
			t.Fatal(err)
		}
		// Its tls-dir still holds the old key; the keyring it kept wins.
		waitLog(t, k2, from, 10*time.Second, "gossip is encrypted", "primary="+newFP, gossip.KeyringFile)
		waitLog(t, k2, from, 20*time.Second, "joined the gossip pool")
		waitFormedEverywhere(t, agents, 3)
	})
	t.Run("an agent issued after the rotation joins", func(t *testing.T) {
		k4 := &localAgent{Name: "k4", IP: "127.0.0.164", Zone: "a", Args: agents[0].Args}
		if err := lc.start(k4, k1.IP); err != nil {
			t.Fatal(err)
		}
		waitFormedEverywhere(t, append(agents, k4), 4)
	})
}

// waitFormedEverywhere waits until every agent answers a formed cluster
// of n members, every one alive: gossip, not only Raft, still carries news.
func waitFormedEverywhere(t *testing.T, agents []*localAgent, n int) {
	t.Helper()
	for _, a := range agents {
		_, err := waitStatus(ctxFor(t, 30*time.Second), a.URL(), func(st api.Status) bool {
			return wantFormed(n)(st) && allAlive(st, n)
		})
		if err != nil {
			t.Fatalf("%s: %v", a.Name, err)
		}
	}
}

// allAlive reports whether st lists n members, all alive.
func allAlive(st api.Status, n int) bool {
	alive := 0
	for _, m := range st.Members {
		if m.State == api.StateAlive {
			alive++
		}
	}
	return alive == n && len(st.Members) == n
}
