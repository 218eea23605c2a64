package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startEmulateBin runs the real binary's `emulate` and returns the
// environment line it prints; the process is stopped when the test ends.
func startEmulateBin(t *testing.T, args ...string) (*exec.Cmd, string, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(testBin, append([]string{"emulate"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("emulate stderr:\n%s", stderr.String())
		}
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(s)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case l := <-line:
		return cmd, l, &stderr
	case <-time.After(20 * time.Second):
		t.Fatal("emulate printed no environment line")
	}
	return nil, "", nil
}

// emulateDo sends one request to the emulator (loopback only: the
// address comes from the line the binary printed for 127.0.0.1).
func emulateDo(t *testing.T, method, url string, header map[string]string, body string) (int, string) {
	t.Helper()
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("refusing to send to %s", url)
	}
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestEmulateGCPBinary(t *testing.T) {
	cmd, line, _ := startEmulateBin(t, "gcp", "--listen", "127.0.0.1:0", "--zone", "us-central1-b", "--name", "web-1")
	host, ok := strings.CutPrefix(line, "GCE_METADATA_HOST=")
	if !ok || !strings.HasPrefix(host, "127.0.0.1:") {
		t.Fatalf("environment line %q", line)
	}
	base := "http://" + host
	google := map[string]string{"Metadata-Flavor": "Google"}
	for path, want := range map[string]string{
		"/computeMetadata/v1/instance/zone":      "projects/271828182845/zones/us-central1-b",
		"/computeMetadata/v1/instance/name":      "web-1",
		"/computeMetadata/v1/instance/preempted": "FALSE",
	} {
		if code, body := emulateDo(t, "GET", base+path, google, ""); code != 200 || body != want {
			t.Errorf("%s: %d %q, want %q", path, code, body, want)
		}
	}
	if code, _ := emulateDo(t, "GET", base+"/computeMetadata/v1/instance/zone", nil, ""); code != 403 {
		t.Errorf("without Metadata-Flavor: %d", code)
	}
	if code, body := emulateDo(t, "POST", base+"/lifeboat/notice", nil, `{"kind":"preempt"}`); code != 200 {
		t.Fatalf("notice: %d %s", code, body)
	}
	if _, body := emulateDo(t, "GET", base+"/computeMetadata/v1/instance/preempted", google, ""); body != "TRUE" {
		t.Errorf("preempted %q after the notice", body)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("emulate did not stop on SIGTERM")
	}
}

func TestEmulateAWSAndAzureBinary(t *testing.T) {
	_, line, _ := startEmulateBin(t, "aws", "--region", "eu-west-1", "--lifecycle", "on-demand")
	base, ok := strings.CutPrefix(line, "AWS_EC2_METADATA_SERVICE_ENDPOINT=")
	if !ok || !strings.HasSuffix(base, "/") {
		t.Fatalf("environment line %q", line)
	}
	base = strings.TrimSuffix(base, "/")
	code, token := emulateDo(t, "PUT", base+"/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "60"}, "")
	if code != 200 {
		t.Fatalf("token: %d", code)
	}
	tok := map[string]string{"X-aws-ec2-metadata-token": token}
	for path, want := range map[string]string{"placement/availability-zone": "eu-west-1a", "instance-life-cycle": "on-demand"} {
		if code, body := emulateDo(t, "GET", base+"/latest/meta-data/"+path, tok, ""); code != 200 || body != want {
			t.Errorf("%s: %d %q, want %q", path, code, body, want)
		}
	}

	_, line, _ = startEmulateBin(t, "azure", "--listen", "127.0.0.1:0")
	base, ok = strings.CutPrefix(line, "LIFEBOAT_AZURE_METADATA_ENDPOINT=")
	if !ok {
		t.Fatalf("environment line %q", line)
	}
	code, body := emulateDo(t, "GET", base+"/metadata/scheduledevents?api-version=2020-07-01", map[string]string{"Metadata": "true"}, "")
	if code != 200 || !strings.Contains(body, `"Events":[]`) {
		t.Errorf("scheduled events: %d %s", code, body)
	}
}

func TestEmulateBadArgs(t *testing.T) {
	cases := []struct {
		args []string
		msg  string
	}{
		{nil, "accepts 1 arg"},
		{[]string{"oracle"}, `cloud "oracle": want aws, gcp or azure`},
		{[]string{"aws", "gcp"}, "accepts 1 arg"},
		{[]string{"aws", "--lifecycle", "reserved"}, "Lifecycle"},
		{[]string{"aws", "--zone", "eu-west-1a"}, "Zone"},
		{[]string{"gcp", "--instance-id", "i-123"}, "InstanceID"},
		{[]string{"gcp", "--listen", "nonsense"}, `--listen "nonsense"`},
		{[]string{"gcp", "--listen", "127.0.0.1:99999"}, "--listen"},
		{[]string{"azure", "--bogus"}, "unknown flag"},
		{[]string{"azure", "--log-level", "loud"}, "--log-level"},
	}
	for _, c := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd := exec.CommandContext(ctx, testBin, append([]string{"emulate"}, c.args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		cancel()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(stderr.String(), c.msg) {
			t.Errorf("emulate %v: %v, stderr %q; want exit 2 naming %q", c.args, err, stderr.String(), c.msg)
		}
	}
}
