package fsm

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
)

// edgeSeeds are hand-written entries at the edges of the JSON types:
// zone offsets, extreme durations and times, empty and null lists, unknown
// fields, escapes.
var edgeSeeds = []string{
	"\x06" + `{"spec":{"id":"w","command":["x"],"checkpoint":{"mode":"criu","interval":-9223372036854775808},` +
		`"service":{"port":1,"slo":"2562047h47m16.854775807s"},"env":{}},"at":"0000-01-01T00:00:00+23:59"}`,
	"\x01" + `{"node":{"name":"\u00e9\ud800","modes":[],"deadline":"9999-12-31T23:59:59.999999999-23:59"},"at":"2025-01-01T00:00:00+05:30"}`,
	"\x02" + `{"nodes":["n1",null],"at":"9999-12-31T23:00:00Z","ttl":3600000000000}`,
	"\x07" + `{"workload":"counter","holder":"n2","standbys":[],"prev_epoch":18446744073709551615,"v2":[{}]}`,
	"\x0f" + ` {"WORKLOAD":"counter","epoch":3,"value":"<&>"} `,
}

// addSeeds adds every sample command, plain and ignorable, to the corpus.
func addSeeds(f *testing.F, add func(b []byte)) {
	for _, c := range sampleCommands() {
		add(encodeOrFail(f, c))
		b, err := EncodeIgnorable(c)
		if err != nil {
			f.Fatal(err)
		}
		add(b)
	}
	for _, s := range edgeSeeds {
		add([]byte(s))
	}
	add(nil)
	add([]byte{99, '{', '}'})
	add([]byte{99 | byte(IgnoreUnknownFlag), '{', '}'})
}

// FuzzDecode checks that Decode never panics, fails only with ErrMalformed
// or ErrUnknownCommand, and that what decodes re-encodes to a fixed point:
// decoding the re-encoding gives a command that encodes to the same bytes.
// (Bytes, not reflect.DeepEqual: an empty JSON list decodes to an empty
// slice that omitempty then drops, which is the same command on the wire.)
func FuzzDecode(f *testing.F) {
	addSeeds(f, func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := Decode(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownCommand) {
				t.Fatalf("Decode error %v wraps no sentinel", err)
			}
			return
		}
		enc, err := Encode(c)
		if err != nil {
			t.Fatalf("Encode(Decode(%q)) = %v", in, err)
		}
		c2, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(c)) = %v for %q", err, enc)
		}
		if reflect.TypeOf(c2) != reflect.TypeOf(c) || c2.Type() != CommandType(in[0])&^IgnoreUnknownFlag {
			t.Fatalf("type changed: %T from %#x", c2, in[0])
		}
		if enc2 := encodeOrFail(t, c2); !bytes.Equal(enc, enc2) {
			t.Fatalf("re-encoding changed:\n%q\n%q", enc, enc2)
		}
	})
}

// fuzzBase is a machine with a node, a granted workload with a pending
// checkpoint and a migration, so that fuzzed commands reach deep paths.
func fuzzBase(t *testing.T) *harness {
	h := newHarness(t)
	h.ok(NodeUpsert{Node: testNode("n1"), At: t0})
	h.ok(LeaseRenew{Nodes: []string{"n1"}, At: t0, TTL: 6 * time.Second})
	e := h.grant("counter", "n1")
	h.ok(CheckpointPrepare{Workload: "counter", Epoch: e, Digest: "ab12", Bytes: 1, At: t0})
	h.ok(MigrationBegin{Migration: Migration{ID: "m1", Workload: "counter"}, At: t0})
	return h
}

// FuzzApply applies three arbitrary entries to a populated machine and
// checks that Apply never panics, records the index, and leaves a state
// whose snapshot restores to the same bytes.
func FuzzApply(f *testing.F) {
	var seeds [][]byte
	addSeeds(f, func(b []byte) { seeds = append(seeds, b) })
	for i, b := range seeds {
		f.Add(b, seeds[(i+1)%len(seeds)], seeds[(i+7)%len(seeds)])
	}
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		h := fuzzBase(t)
		for _, data := range [][]byte{a, b, c} {
			h.index++
			if r := h.m.Apply(h.index, data); r.Index != h.index || h.m.Index() != h.index {
				t.Fatalf("Apply at %d: response %+v, index %d", h.index, r, h.m.Index())
			}
		}
		snap, err := h.m.Snapshot()
		if err != nil {
			t.Fatalf("Snapshot: %v", err)
		}
		restored := snapshotRestore(t, h.m)
		if again, _ := restored.Snapshot(); !bytes.Equal(snap, again) {
			t.Fatalf("restored snapshot differs:\n%s\n%s", snap, again)
		}
	})
}
