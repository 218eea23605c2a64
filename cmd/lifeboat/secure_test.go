package main

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/fsm"
	"github.com/lifeboat/lifeboat/node/api"
	"github.com/lifeboat/lifeboat/node/peer"
	"github.com/lifeboat/lifeboat/transfer"
)

// TestTrustBoundary probes a 3-agent cluster of real processes, each in
// its own network namespace, with default settings, as an outsider would,
// and checks each probe is refused while the legitimate paths work: the
// CLI over HTTPS with --ca-file and a token or a client certificate.
func TestTrustBoundary(t *testing.T) {
	agents := trustAgents(t, "t1", "t2", "t3", "rogue")
	rogue := agents[3]
	agents = agents[:3]
	lc := startCluster(t, agents)
	if _, err := waitStatus(ctxFor(t, 60*time.Second), agents[0].URL(), wantFormed(3)); err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, 3*time.Minute)
	caFile := filepath.Join(lc.ca(), transfer.CACertFile)
	url := agents[0].URL()

	t.Run("plain HTTP gets no API", func(t *testing.T) {
		resp, err := http.Post("http://"+agents[0].IP+":7949/v1/workloads", "application/json", strings.NewReader(`{}`))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("plain HTTP to the admin port: %s, want 400 (an HTTP request to an HTTPS server)", resp.Status)
			}
		}
	})
	t.Run("no credentials", func(t *testing.T) {
		anon := tokenClient(url, "")
		if _, err := anon.Submit(ctx, []byte(`{"id":"x","command":["/bin/sh","-c","id > /tmp/pwned"]}`), "application/json"); !errors.Is(err, api.ErrUnauthorized) {
			t.Fatalf("anonymous submit: %v, want 401", err)
		}
		if _, err := anon.Workloads(ctx); !errors.Is(err, api.ErrUnauthorized) {
			t.Fatalf("anonymous read: %v, want 401", err)
		}
		for _, p := range []string{"/healthz", "/readyz"} {
			if err := anon.Do(ctx, http.MethodGet, p, nil, "", nil); err != nil {
				t.Fatalf("%s must stay open for load balancers: %v", p, err)
			}
		}
	})
	t.Run("the CLI over HTTPS", func(t *testing.T) {
		ops, err := lc.issueClient("ops")
		if err != nil {
			t.Fatal(err)
		}
		ok := [][]string{
			{"--ca-file", caFile, "--token", writeToken},
			{"--ca-file", caFile, "--token", "", "--cert", filepath.Join(ops, transfer.NodeCertFile), "--key", filepath.Join(ops, transfer.NodeKeyFile)},
		}
		for _, creds := range ok {
			if out, err := runCLI(append([]string{"status", "--addr", url}, creds...)...); err != nil || !strings.Contains(out, agents[0].Name) {
				t.Errorf("status %q: %v\n%s", creds, err, out)
			}
		}
		if out, err := runCLI("status", "--addr", url, "--ca-file", "", "--token", writeToken); err == nil || !strings.Contains(out, "certificate") {
			t.Errorf("status without the CA: %v\n%s; want a certificate error", err, out)
		}
	})
	t.Run("a client certificate of another CA", func(t *testing.T) {
		other, _ := transfer.NewCA("other", time.Now())
		id, _ := other.Issue("ops", transfer.RoleClient, time.Now())
		c := envClient(url)
		c.Token = ""
		tc := c.HTTP.Transport.(*http.Transport).TLSClientConfig
		tc.Certificates = []tls.Certificate{id.Cert}
		if _, err := c.Status(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("a foreign client certificate: %v, want a failed handshake", err)
		}
	})
	t.Run("peer endpoints need a peer certificate", func(t *testing.T) {
		// Not on the admin port, whatever the token.
		if err := envClient(url).Do(ctx, http.MethodPost, "/v1/internal/apply", []byte(`{"command":"AQ=="}`), "application/json", nil); !errors.Is(err, fsm.ErrNotFound) {
			t.Fatalf("apply on the admin port with the write token: %v, want 404", err)
		}
		// On the Raft port the token opens nothing: no handshake.
		tc := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{peer.ALPN}} //nolint:gosec // the probe of an outsider
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 5 * time.Second}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+agents[0].IP+":7947/v1/internal/lease", strings.NewReader(`{"node":"t1"}`))
		req.Header.Set("Authorization", "Bearer "+writeToken)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("a lease renewal with the token on the Raft port: %s, want a failed handshake", resp.Status)
		}
	})
	t.Run("what a caller controls is bounded", func(t *testing.T) {
		c := agents[1].Client()
		for body, want := range map[string]string{
			`{"id":"b1","command":["/bin/true"],"checkpoint":{"mode":"criu","interval":"1ns"}}`:       "below the minimum of 1s",
			`{"id":"b2","command":["/bin/true"],"resources":{"memory_mib":9223372036854775807}}`:      "memory",
			`{"id":"b3","command":["/bin/true"]} trailing`:                                            "followed by more data",
			`{"id":"b4","command":["/bin/true"],"env":{"K":"` + strings.Repeat("v", 16<<10+1) + `"}}`: "over the limit",
		} {
			_, err := c.Submit(ctx, []byte(body), "application/json")
			var re *api.RemoteError
			if !errors.As(err, &re) || re.Status != http.StatusBadRequest || !strings.Contains(re.Message, want) {
				t.Errorf("%.60s…: %v, want 400 saying %q", body, err, want)
			}
		}
		err := c.Do(ctx, http.MethodPost, "/v1/workloads", make([]byte, 2<<20), "application/json", nil)
		if !errors.Is(err, api.ErrTooLarge) {
			t.Errorf("a 2 MiB spec: %v, want 413", err)
		}
		if ws, err := c.Workloads(ctx); err != nil || len(ws) != 0 {
			t.Errorf("after the refusals: %d workloads (%v), want none", len(ws), err)
		}
	})
	t.Run("a rogue host of another CA is never a peer", func(t *testing.T) {
		rogueNeverTakenIn(t, ctx, lc, agents, rogue)
	})
	t.Run("forged lease renewals do not hold a stopped holder", func(t *testing.T) {
		forgedLeaseFailsOver(t, ctx, lc, agents)
	})
}

// trustAgents are agents in namespaces of their own on a switch the test
// makes (10.237.0.0/24), each with the write token; the namespaces go
// when the test ends, with whatever is left in them.
func trustAgents(t *testing.T, names ...string) []*localAgent {
	agents, _ := switchAgents(t, "tb", "10.237.0", names...)
	for i, a := range agents {
		a.Zone = string(rune('a' + i%3))
		a.Args = []string{"--bootstrap-expect", "3", "--spares", "1", "--api-token", writeToken}
	}
	return agents
}

// runCLI runs the binary without the environment's credentials; its
// combined output is returned.
func runCLI(args ...string) (string, error) {
	cmd := exec.Command(testBin, args...)
	cmd.Env = append(cmd.Environ(), "LIFEBOAT_CA_FILE=", "LIFEBOAT_API_TOKEN=")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// rogueNeverTakenIn starts an agent whose certificate is of another CA
// and that holds the cluster's gossip key: gossip lets it in, but it is never
// recorded, never a server, never leased, never given work and never
// sent the state.
func rogueNeverTakenIn(t *testing.T, ctx context.Context, lc *localCluster, agents []*localAgent, rogue *localAgent) {
	other, _ := transfer.NewCA("rogue", time.Now())
	rogue.Args = []string{"--api-token", writeToken}
	id, _ := other.IssueSANs("rogue", transfer.RolePeer, transfer.SANs{IPs: []net.IP{net.ParseIP(rogue.IP)}}, time.Now())
	tlsDir := filepath.Join(lc.dir, rogue.Name, "data", "tls")
	if err := id.Save(tlsDir); err != nil {
		t.Fatal(err)
	}
	// The gossip key leaked: it gets into the pool, and no further.
	if err := ensureGossipKey(lc.ca(), tlsDir); err != nil {
		t.Fatal(err)
	}
	if err := lc.start(rogue, agents[0].IP); err != nil {
		t.Fatal(err)
	}
	defer rogue.signal(syscall.SIGTERM, 10*time.Second)
	c := agents[0].Client()
	spec := `{"id":"bait","command":["/bin/sleep","1000"],"checkpoint":{"mode":"none"},"resources":{"memory_mib":16},"env":{"PASSWORD":"hunter2"}}`
	if _, err := c.Submit(ctx, []byte(spec), "application/json"); err != nil {
		t.Fatal(err)
	}
	defer c.Remove(context.Background(), "bait")
	seen := false
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range st.Members {
			if m.Name != "rogue" {
				continue
			}
			seen = true
			if m.Role != api.RoleMember || !m.LeaseExpiry.IsZero() {
				t.Fatalf("the rogue host was taken in: %+v", m)
			}
		}
		w, err := c.Workload(ctx, "bait")
		if err != nil {
			t.Fatal(err)
		}
		if w.Holder == "rogue" || strings.Contains(strings.Join(w.Standbys, ","), "rogue") {
			t.Fatalf("the rogue host was given work: %+v", w)
		}
	}
	if !seen {
		t.Fatal("the rogue host never joined gossip: the probe proved nothing")
	}
	// It never got the state: its own view has no workloads.
	rc, err := credentials{caFile: filepath.Join(lc.dir, rogue.Name, "data", "tls", transfer.CACertFile), token: writeToken}.client(rogue.URL())
	if err != nil {
		t.Fatal(err)
	}
	if ws, err := rc.Workloads(ctx); err == nil && len(ws) > 0 {
		t.Fatalf("the rogue host was sent the state: %d workloads", len(ws))
	}
}

// forgedLeaseFailsOver stops a holder's agent (SIGSTOP) while a peer of the
// CA that is not the holder keeps renewing the holder's lease: every
// renewal is refused, and the workload fails over as if nobody tried.
func forgedLeaseFailsOver(t *testing.T, ctx context.Context, lc *localCluster, agents []*localAgent) {
	ca, err := lc.loadCA()
	if err != nil {
		t.Fatal(err)
	}
	forger, _ := ca.Issue("forger", transfer.RolePeer, time.Now())
	dial := (&net.Dialer{Timeout: time.Second}).DialContext
	pc := peer.NewClient(&http.Client{Transport: peer.Transport(forger.ClientTLS(peer.ALPN, ""), dial), Timeout: 3 * time.Second}, nil)

	c := agents[0].Client()
	spec := `{"id":"held","command":["/bin/sleep","1000"],"checkpoint":{"mode":"none"},"resources":{"memory_mib":16}}`
	if _, err := c.Submit(ctx, []byte(spec), "application/json"); err != nil {
		t.Fatal(err)
	}
	defer c.Remove(context.Background(), "held")
	w := waitWorkload(t, c, "held", func(w api.Workload) bool { return w.State == string(fsm.WorkloadRunning) })
	var holder, watcher *localAgent
	for _, a := range agents {
		if a.Name == w.Holder {
			holder = a
		} else if watcher == nil {
			watcher = a
		}
	}
	if holder == nil {
		t.Fatalf("held runs on %q, not one of the agents", w.Holder)
	}
	forge := func() {
		st, err := watcher.Client().Status(ctx)
		if err != nil || st.Leader == "" {
			return
		}
		leader := lc.agentNamed(st.Leader)
		if leader == nil {
			return
		}
		_, err = pc.Lease(ctx, leader.IP+":7947", peer.LeaseRequest{Node: holder.Name})
		if err == nil {
			t.Errorf("forger renewed %s's lease at %s", holder.Name, leader.Name)
		} else if !errors.Is(err, api.ErrForbidden) && !errors.Is(err, api.ErrNoLeader) && !errors.Is(err, api.ErrUnavailable) {
			t.Errorf("a forged renewal: %v, want forbidden", err)
		}
	}
	forge()
	if err := holder.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer holder.cmd.Process.Signal(syscall.SIGCONT)
	stopped := time.Now()
	// The lease (6 s), the drift margin and the lock delay (2 s) pass
	// before the re-grant; allow the rest for detection and the restart.
	for time.Since(stopped) < 25*time.Second {
		forge()
		got, err := watcher.Client().Workload(ctx, "held")
		if err == nil && got.Holder != holder.Name && got.Epoch > w.Epoch && got.State == string(fsm.WorkloadRunning) {
			t.Logf("held failed over from %s to %s in %s, %s's lease forged all along", holder.Name, got.Holder,
				time.Since(stopped).Round(100*time.Millisecond), holder.Name)
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("held did not fail over within 25 s of %s stopping", holder.Name)
}
