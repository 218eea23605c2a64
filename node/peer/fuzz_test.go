package peer

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/lifeboat/lifeboat/node/api"
)

// hostile are inputs every decoder is seeded with besides its own.
var hostile = []string{
	``, `null`, `[]`, `"x"`, `0`, `{`, `}`, `{}`, `{}{}`, `{} x`, `{"a":1}`,
	`{"workload":"\u0000"}`, `{"node":"\ud800"}`, "{\"workload\":\"\xff\xfe\"}",
	`{"after":18446744073709551616}`, `{"wait_ms":-9223372036854775808}`,
	`{"seq":-1}`, `{"command":"====="}`, `{"offset":"9999999999h"}`,
	`{"WORKLOAD":"counter"}`, `{"workload":"a","workload":"b"}`,
	`{"workload":{"nested":[1,2,{"deep":null}]}}`,
}

// fuzzDecoder checks decode on any input: it never panics, it refuses
// with api.ErrBadRequest (api.ErrTooLarge for a body over limit) and the
// zero value, it accepts only bodies
// within limit, and what it accepts Client re-encodes (within the limit)
// into a body that decodes to the same value.
func fuzzDecoder[T request](f *testing.F, decode func(io.Reader) (T, error), limit int, seeds ...string) {
	for _, s := range append(seeds, hostile...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := decode(bytes.NewReader(body))
		if err != nil {
			var zero T
			want := api.ErrBadRequest
			if len(body) > limit {
				want = api.ErrTooLarge
			}
			if !errors.Is(err, want) || !reflect.DeepEqual(v, zero) {
				t.Fatalf("refused with %v and %+v; want %v and the zero value", err, v, want)
			}
			return
		}
		if len(body) > limit {
			t.Fatalf("accepted a %d-byte body, over the limit %d", len(body), limit)
		}
		again, err := encode(v)
		if err != nil {
			t.Fatalf("accepted %+v, which does not encode: %v", v, err)
		}
		if len(again) > limit {
			t.Fatalf("accepted %+v, whose encoding is %d bytes, over the limit %d", v, len(again), limit)
		}
		w, err := decode(bytes.NewReader(again))
		if err != nil || !reflect.DeepEqual(v, w) {
			t.Fatalf("%+v re-encoded as %s decodes to %+v, %v", v, again, w, err)
		}
	})
}

func FuzzDecodeApply(f *testing.F) {
	fuzzDecoder(f, DecodeApply, limitApply, `{"command":"AQID"}`, `{"command":"AA=="}`, `{"command":"AQ\nID"}`)
}

func FuzzDecodeLease(f *testing.F) {
	fuzzDecoder(f, DecodeLease, limitSmall, `{"node":"n1"}`, `{"node":"\"<&>\u2028"}`, `{"node":""}`)
}

func FuzzDecodeMirror(f *testing.F) {
	fuzzDecoder(f, DecodeMirror, limitSmall, `{"after":3,"wait_ms":5000}`, `{"after":0}`, `{"wait_ms":-1}`)
}

func FuzzDecodeCheckpoint(f *testing.F) {
	fuzzDecoder(f, DecodeCheckpoint, limitSmall, `{"workload":"counter"}`, `{"workload":""}`)
}

func FuzzDecodeRestart(f *testing.F) {
	fuzzDecoder(f, DecodeRestart, limitSmall, `{"workload":"counter","from_checkpoint":true}`, `{"workload":"c","from_checkpoint":1}`)
}

func FuzzDecodeMigrate(f *testing.F) {
	fuzzDecoder(f, DecodeMigrate, limitMove,
		`{"id":"counter","to":"n2","reason":"drain","migration":"counter-abc","index":42}`,
		`{"id":"counter","park":true,"reason":"preempted for web (high)"}`,
		`{"id":"counter","to":"n2","park":true}`, `{"id":"counter","to":"n2","reason":""}`)
}

func FuzzDecodeSend(f *testing.F) {
	fuzzDecoder(f, DecodeSend, limitSend, `{"workload":"counter","seq":4,"to":"n3"}`, `{"workload":"counter","seq":0,"to":"n3"}`)
}

func FuzzDecodeResults(f *testing.F) {
	fuzzDecoder(f, DecodeResults, limitSmall, `{"workload":"counter"}`, `{"workload":"\u007f"}`)
}

func FuzzDecodeClock(f *testing.F) {
	fuzzDecoder(f, DecodeClock, limitSmall, `{"offset":"-30s"}`, `{"offset":"0s"}`, `{"offset":"1.5h"}`, `{"offset":"24h0m0.000000001s"}`)
}

func FuzzDecodeHello(f *testing.F) {
	fuzzDecoder(f, DecodeHello, limitSmall, `{}`, ` {} `)
}

func FuzzDecodeKeyring(f *testing.F) {
	fuzzDecoder(f, DecodeKeyring, limitKeyring, `{"op":"list"}`,
		`{"op":"install","key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`,
		`{"op":"use","fingerprint":"0123456789abcdef"}`, `{"op":"remove","fingerprint":"0123456789ABCDEF"}`,
		`{"op":"list","key":""}`, `{"op":"install","key":"c2hvcnQ="}`)
}
