package emulate

// The real SDK clients the watchers use, against the emulators. Every
// client here dials through loopbackClient, which refuses any address but
// 127.0.0.1, so a misconfigured SDK fails instead of reaching a real
// metadata service.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/compute/metadata"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// statusOf is the HTTP status an SDK error carries (0 if none).
func statusOf(err error) int {
	var se interface{ HTTPStatusCode() int }
	if errors.As(err, &se) {
		return se.HTTPStatusCode()
	}
	return 0
}

func imdsRead(ctx context.Context, c *imds.Client, path string) (string, error) {
	out, err := c.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
	if err != nil {
		return "", err
	}
	defer out.Content.Close()
	b, err := io.ReadAll(out.Content)
	return string(b), err
}

func TestAWSSDK(t *testing.T) {
	e, url := start(t, testConfig(t, AWS))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c := imds.New(imds.Options{Endpoint: url, HTTPClient: loopbackClient()})

	if id, err := imdsRead(ctx, c, "instance-id"); err != nil || id != "i-0e1fb0a7c0ffee123" {
		t.Fatalf("instance-id: %q %v", id, err)
	}
	if zone, err := imdsRead(ctx, c, "placement/availability-zone"); err != nil || zone != "us-east-1a" {
		t.Errorf("zone: %q %v", zone, err)
	}
	region, err := c.GetRegion(ctx, nil)
	if err != nil || region.Region != "us-east-1" {
		t.Errorf("GetRegion: %+v %v", region, err)
	}
	doc, err := c.GetInstanceIdentityDocument(ctx, nil)
	if err != nil || doc.InstanceID != "i-0e1fb0a7c0ffee123" || doc.InstanceType != "m5.large" ||
		doc.AvailabilityZone != "us-east-1a" || doc.PendingTime.IsZero() {
		t.Errorf("identity document: %+v %v", doc, err)
	}
	if _, err := imdsRead(ctx, c, "spot/instance-action"); statusOf(err) != 404 {
		t.Errorf("instance-action before a notice: %v (status %d), want 404", err, statusOf(err))
	}
	deadline := time.Now().Add(2 * time.Minute).UTC().Truncate(time.Second)
	if err := e.Notice(KindPreempt, deadline); err != nil {
		t.Fatal(err)
	}
	body, err := imdsRead(ctx, c, "spot/instance-action")
	var action struct{ Action, Time string }
	if err != nil || json.Unmarshal([]byte(body), &action) != nil || action.Action != "terminate" || action.Time != deadline.Format(time.RFC3339) {
		t.Errorf("instance-action: %q %v", body, err)
	}
	s := e.State()
	if s.TokensIssued != 1 || s.Requests["/latest/api/token"] != 1 {
		t.Errorf("the SDK should fetch one token and reuse it: %d tokens, requests %v", s.TokensIssued, s.Requests)
	}
}

// TestAWSSDKEndpointVariable: imds.New itself (not only the shared config
// loader) reads AWS_EC2_METADATA_SERVICE_ENDPOINT when Options.Endpoint is
// empty.
func TestAWSSDKEndpointVariable(t *testing.T) {
	e, url := start(t, testConfig(t, AWS))
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", strings.TrimPrefix(EnvLine(AWS, url), "AWS_EC2_METADATA_SERVICE_ENDPOINT="))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c := imds.New(imds.Options{HTTPClient: loopbackClient()})
	if typ, err := imdsRead(ctx, c, "instance-type"); err != nil || typ != "m5.large" {
		t.Fatalf("instance-type through the variable: %q %v", typ, err)
	}
	if n := e.State().Requests["/latest/meta-data/instance-type"]; n != 1 {
		t.Errorf("the emulator served instance-type %d times", n)
	}
}

func TestGCPSDK(t *testing.T) {
	e, url := start(t, testConfig(t, GCP))
	t.Setenv("GCE_METADATA_HOST", strings.TrimPrefix(EnvLine(GCP, url), "GCE_METADATA_HOST="))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c := metadata.NewClient(loopbackClient())

	if !c.OnGCEWithContext(ctx) {
		t.Error("OnGCE is false with GCE_METADATA_HOST set")
	}
	checks := []struct {
		name string
		get  func() (string, error)
		want string
	}{
		{"Zone", func() (string, error) { return c.ZoneWithContext(ctx) }, "us-central1-a"},
		{"InstanceName", func() (string, error) { return c.InstanceNameWithContext(ctx) }, "lifeboat-vm"},
		{"Hostname", func() (string, error) { return c.HostnameWithContext(ctx) }, "lifeboat-vm.us-central1-a.c.lifeboat-emulated.internal"},
		{"InternalIP", func() (string, error) { return c.InternalIPWithContext(ctx) }, "10.128.0.2"},
		{"instance/id", func() (string, error) { return c.GetWithContext(ctx, "instance/id") }, "4520031799277581759"},
		{"machine-type", func() (string, error) { return c.GetWithContext(ctx, "instance/machine-type") }, "projects/271828182845/machineTypes/e2-standard-2"},
		{"provisioning-model", func() (string, error) { return c.GetWithContext(ctx, "instance/scheduling/provisioning-model") }, "SPOT"},
		{"ProjectID", func() (string, error) { return c.ProjectIDWithContext(ctx) }, "lifeboat-emulated"},
	}
	for _, ch := range checks {
		if got, err := ch.get(); err != nil || got != ch.want {
			t.Errorf("%s: %q %v, want %q", ch.name, got, err, ch.want)
		}
	}
	if tags, err := c.InstanceTagsWithContext(ctx); err != nil || tags == nil || len(tags) != 0 {
		t.Errorf("InstanceTags: %v %v", tags, err)
	}
	var nd metadata.NotDefinedError
	if _, err := c.GetWithContext(ctx, "instance/nothing"); !errors.As(err, &nd) {
		t.Errorf("a missing key: %v, want NotDefinedError", err)
	}

	// The watcher's pattern: Subscribe long-polls with wait_for_change and
	// last_etag, and sees the preemption as it happens.
	type seen struct {
		v  string
		at time.Time
	}
	values := make(chan seen, 4)
	stop := errors.New("stop")
	done := make(chan error, 1)
	go func() {
		done <- c.SubscribeWithContext(ctx, "instance/preempted", func(_ context.Context, v string, ok bool) error {
			values <- seen{v, time.Now()}
			if v == "TRUE" {
				return stop
			}
			return nil
		})
	}()
	if first := <-values; first.v != "FALSE" {
		t.Fatalf("first value %q", first.v)
	}
	waitFor(t, "Subscribe to long-poll", func() bool { return e.State().Waiters == 1 })
	fired := time.Now()
	if err := e.Notice(KindPreempt, time.Time{}); err != nil {
		t.Fatal(err)
	}
	got := <-values
	if got.v != "TRUE" {
		t.Errorf("after the notice: %q", got.v)
	}
	t.Logf("Subscribe saw the preemption %v after the notice", got.at.Sub(fired))
	if err := <-done; !errors.Is(err, stop) {
		t.Errorf("Subscribe returned %v", err)
	}
	if n := e.State().Requests["/computeMetadata/v1/instance/preempted"]; n != 2 {
		t.Errorf("Subscribe sent %d requests for one change, want 2 (a read and one long poll)", n)
	}
}
