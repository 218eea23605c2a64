package peer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat/lifeboat/node/api"
)

// decodeAny runs the decoder of endpoint on body and returns the error.
func decodeAny(endpoint, body string) error {
	decoders := map[string]func(io.Reader) error{
		"apply":      func(r io.Reader) error { _, err := DecodeApply(r); return err },
		"lease":      func(r io.Reader) error { _, err := DecodeLease(r); return err },
		"mirror":     func(r io.Reader) error { _, err := DecodeMirror(r); return err },
		"checkpoint": func(r io.Reader) error { _, err := DecodeCheckpoint(r); return err },
		"restart":    func(r io.Reader) error { _, err := DecodeRestart(r); return err },
		"migrate":    func(r io.Reader) error { _, err := DecodeMigrate(r); return err },
		"send":       func(r io.Reader) error { _, err := DecodeSend(r); return err },
		"results":    func(r io.Reader) error { _, err := DecodeResults(r); return err },
		"clock":      func(r io.Reader) error { _, err := DecodeClock(r); return err },
	}
	return decoders[endpoint](strings.NewReader(body))
}

func TestDecodeErrors(t *testing.T) {
	long := strings.Repeat("a", MaxName+1)
	cases := []struct {
		endpoint, body string
		want           string // in the error; "" means accepted
	}{
		{"apply", `{"command":"AQID"}`, ""},
		{"apply", `{"command":""}`, "command must not be empty"},
		{"apply", `{"command":null}`, "command must not be empty"},
		{"apply", `{"command":"!!"}`, "does not parse"},
		{"apply", `{"command":"AQID","index":1}`, "unknown field"},
		{"lease", `{"node":"n1"}`, ""},
		{"lease", ` {"node":"n1"} ` + "\n", ""},
		{"lease", `n1`, "must be a JSON object"},
		{"lease", ``, "must be a JSON object"},
		{"lease", `null`, "must be a JSON object"},
		{"lease", `["n1"]`, "must be a JSON object"},
		{"lease", `{"node":""}`, "node must not be empty"},
		{"lease", `{"node":"` + long + `"}`, "node is 254 bytes"},
		{"lease", `{"node":"n\u0000"}`, "control character"},
		{"lease", `{"node":"n\u0085"}`, "control character"},
		{"lease", `{"node":"n1"}{"node":"n2"}`, "data after the JSON object"},
		{"lease", `{"node":"n1"} x`, "data after the JSON object"},
		{"lease", `{"node":"n1"`, "does not parse"},
		{"lease", `{"node":"n1","extra":1}`, "unknown field"},
		{"lease", `{"node":7}`, "does not parse"},
		{"mirror", `{"after":3,"wait_ms":5000}`, ""},
		{"mirror", `{}`, ""},
		{"mirror", `{"after":3,"wait_ms":-1}`, "wait_ms -1 must not be negative"},
		{"mirror", `{"after":-3}`, "does not parse"},
		{"mirror", `{"wait_ms":1e400}`, "does not parse"},
		{"checkpoint", `{"workload":"counter"}`, ""},
		{"checkpoint", `{}`, "workload must not be empty"},
		{"restart", `{"workload":"counter","from_checkpoint":true}`, ""},
		{"restart", `{"id":"counter"}`, "unknown field"},
		{"restart", `{"workload":"counter","from_checkpoint":"yes"}`, "does not parse"},
		{"migrate", `{"id":"counter","to":"n2"}`, ""},
		{"migrate", `{"id":"counter","park":true,"reason":"preempted for x (high)"}`, ""},
		{"migrate", `{"id":"counter"}`, "to must not be empty"},
		{"migrate", `{"id":"counter","to":"n2","park":true}`, "to must be empty when park"},
		{"migrate", `{"to":"n2"}`, "id must not be empty"},
		{"migrate", `{"id":"counter","to":"n2","migration":"` + long + `"}`, "migration is 254 bytes"},
		{"migrate", `{"id":"counter","to":"n2","reason":"a\nb"}`, "reason"},
		{"send", `{"workload":"counter","seq":4,"to":"n3"}`, ""},
		{"send", `{"workload":"counter","seq":0,"to":"n3"}`, "seq must be"},
		{"send", `{"workload":"counter","seq":4}`, "to must not be empty"},
		{"send", `{"workload":"counter","seq":1.5,"to":"n3"}`, "does not parse"},
		{"results", `{"workload":"counter"}`, ""},
		{"results", `{"workload":"\u007f"}`, "control character"},
		{"clock", `{"offset":"-30s"}`, ""},
		{"clock", `{"offset":"0s"}`, ""},
		{"clock", `{"offset":""}`, "offset"},
		{"clock", `{"offset":"30"}`, "offset \"30\" must be a duration"},
		{"clock", `{"offset":"25h"}`, "within ±24h"},
		{"clock", `{"offset":"-24h0m1s"}`, "within ±24h"},
	}
	for _, c := range cases {
		t.Run(c.endpoint+" "+c.body, func(t *testing.T) {
			err := decodeAny(c.endpoint, c.body)
			if c.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, api.ErrBadRequest) {
				t.Fatalf("err = %v, want api.ErrBadRequest", err)
			}
			if !strings.Contains(err.Error(), "peer "+c.endpoint+" request") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %q, want it to name the endpoint and say %q", err, c.want)
			}
		})
	}
}

// TestDecodeOverLimit: a body one byte over its endpoint's limit is
// refused before it is parsed, even if it is valid JSON, with a 413 that
// names the limit.
func TestDecodeOverLimit(t *testing.T) {
	limits := map[string]int{"apply": limitApply, "lease": limitSmall, "mirror": limitSmall, "checkpoint": limitSmall,
		"restart": limitSmall, "migrate": limitMove, "send": limitSend, "results": limitSmall, "clock": limitSmall}
	for endpoint, limit := range limits {
		body := "{}" + strings.Repeat(" ", limit-1)
		err := decodeAny(endpoint, body)
		_, status := api.Classify(err)
		if !errors.Is(err, api.ErrTooLarge) || status != http.StatusRequestEntityTooLarge ||
			!strings.Contains(err.Error(), fmt.Sprintf("over the limit of %d bytes", limit)) {
			t.Errorf("%s: a %d-byte body: err = %v (status %d), want 413 naming the limit", endpoint, len(body), err, status)
		}
	}
}

// TestWorstCaseFitsLimit: the largest valid request, as Client encodes
// it, fits its endpoint's limit (names at MaxName of a character JSON
// escapes, the largest numbers).
func TestWorstCaseFitsLimit(t *testing.T) {
	n := strings.Repeat(`"`, MaxName)
	big := ^uint64(0)
	cases := []struct {
		name  string
		req   request
		limit int
	}{
		{"apply", ApplyRequest{Command: bytes.Repeat([]byte{0xff}, MaxCommand)}, limitApply},
		{"lease", LeaseRequest{Node: n}, limitSmall},
		{"mirror", MirrorRequest{After: big, WaitMS: 1<<63 - 1}, limitSmall},
		{"checkpoint", CheckpointRequest{Workload: n}, limitSmall},
		{"restart", RestartRequest{Workload: n, FromCheckpoint: true}, limitSmall},
		{"migrate", MigrateRequest{ID: n, To: n, Reason: n, Migration: n, Index: big}, limitMove},
		{"send", SendRequest{Workload: n, Seq: big, To: n}, limitSend},
		{"results", ResultsRequest{Workload: n}, limitSmall},
		{"clock", ClockRequest{Offset: "-23h59m59.999999999s"}, limitSmall},
	}
	for _, c := range cases {
		if err := c.req.Validate(); err != nil {
			t.Fatalf("%s: the worst case is not valid: %v", c.name, err)
		}
		b, err := encode(c.req)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > c.limit {
			t.Errorf("%s: %d bytes, over the limit %d", c.name, len(b), c.limit)
		}
		if err := decodeAny(c.name, string(b)); err != nil {
			t.Errorf("%s: the worst case does not decode: %v", c.name, err)
		}
	}
}

func TestMigrateReasonDefaultsToManual(t *testing.T) {
	req, err := DecodeMigrate(strings.NewReader(`{"id":"counter","to":"n2"}`))
	if err != nil || req.Reason != "manual" {
		t.Fatalf("req = %+v, err = %v; want reason manual", req, err)
	}
}

func TestMirrorWaitIsBounded(t *testing.T) {
	cases := []struct {
		ms   int64
		want time.Duration
	}{
		{0, 0}, {-5, 0}, {250, 250 * time.Millisecond}, {10_000, MaxMirrorWait},
		{60_000, MaxMirrorWait}, {1<<63 - 1, MaxMirrorWait}, // no overflow into a negative wait
	}
	for _, c := range cases {
		if got := (MirrorRequest{WaitMS: c.ms}).Wait(); got != c.want {
			t.Errorf("Wait(%d ms) = %v, want %v", c.ms, got, c.want)
		}
	}
}

func TestClockStep(t *testing.T) {
	if got := (ClockRequest{Offset: "-1h30m"}).Step(); got != -90*time.Minute {
		t.Fatalf("Step = %v", got)
	}
}
