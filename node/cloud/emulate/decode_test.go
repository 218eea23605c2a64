package emulate

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDecodeNotice(t *testing.T) {
	at := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	cases := []struct {
		body string
		want NoticeSpec
		err  string // substring of the error; "" for success
	}{
		{`{"kind":"preempt"}`, NoticeSpec{Kind: KindPreempt}, ""},
		{` {"kind":"rebalance","in":"2s"} `, NoticeSpec{Kind: KindRebalance, In: 2 * time.Second}, ""},
		{`{"kind":"maintenance","at":"2026-03-14T15:09:26Z","deadline_in":"120s"}`, NoticeSpec{Kind: KindMaintenance, At: at, DeadlineIn: 2 * time.Minute}, ""},
		{`{"kind":"terminate","in":"0s"}`, NoticeSpec{Kind: KindTerminate}, ""},
		{``, NoticeSpec{}, "empty body"},
		{`null`, NoticeSpec{}, "got null"},
		{`[]`, NoticeSpec{}, "want a JSON object"},
		{`"preempt"`, NoticeSpec{}, "want a JSON object"},
		{`{"kind":"preempt"} {}`, NoticeSpec{}, "data after"},
		{`{"kind":"preempt"`, NoticeSpec{}, "body:"},
		{`{}`, NoticeSpec{}, `field "kind"`},
		{`{"kind":"reboot"}`, NoticeSpec{}, `field "kind": "reboot"`},
		{`{"kind":7}`, NoticeSpec{}, `field "kind": want a string, got a number`},
		{`{"Kind":"preempt"}`, NoticeSpec{}, `unknown field "Kind"`},
		{`{"kind":"preempt","when":"now"}`, NoticeSpec{}, `unknown field "when"`},
		{`{"kind":"preempt","kind":"terminate"}`, NoticeSpec{}, `field "kind" given twice`},
		{`{"kind":"preempt",}`, NoticeSpec{}, "body:"},
		{`{"kind":"preempt","at":"tomorrow"}`, NoticeSpec{}, `field "at"`},
		{`{"kind":"preempt","in":"2"}`, NoticeSpec{}, `field "in"`},
		{`{"kind":"preempt","in":"-2s"}`, NoticeSpec{}, `field "in": "-2s" is negative`},
		{`{"kind":"preempt","in":2}`, NoticeSpec{}, `field "in": want a string, got a number`},
		{`{"kind":"preempt","deadline_in":"0s"}`, NoticeSpec{}, `field "deadline_in": must be positive`},
		{`{"kind":"preempt","deadline_in":null}`, NoticeSpec{}, `field "deadline_in": want a string, got null`},
		{`{"kind":"preempt","at":"2026-03-14T15:09:26Z","in":"1s"}`, NoticeSpec{}, `"at" and "in" both`},
		{`{"kind":"preempt","deadline_in":"` + strings.Repeat("9", MaxNoticeBody) + `"}`, NoticeSpec{}, "longer than"},
	}
	for _, c := range cases {
		got, err := DecodeNotice(strings.NewReader(c.body))
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.body, err)
		case c.err != "" && (err == nil || !errors.Is(err, ErrBadNotice) || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%.60s: error %v, want ErrBadNotice containing %q", c.body, err, c.err)
		case c.err == "" && (got.Kind != c.want.Kind || !got.At.Equal(c.want.At) || got.In != c.want.In || got.DeadlineIn != c.want.DeadlineIn):
			t.Errorf("%s: %+v, want %+v", c.body, got, c.want)
		}
	}
}

func FuzzDecodeNotice(f *testing.F) {
	for _, s := range []string{
		`{"kind":"preempt"}`, `{"kind":"rebalance","in":"2s"}`, `{"kind":"maintenance","at":"2026-03-14T15:09:26Z","deadline_in":"120s"}`,
		`{"kind":"terminate","in":"1h2m3.5s","deadline_in":"1ns"}`, `{"kind":"preempt","at":"2026-03-14T15:09:26.123456789+02:00"}`,
		`{"kind":7}`, `[]`, `null`, ``, `{"kind":"preempt"} x`, `{"kind":"preempt","kind":"terminate"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := DecodeNotice(strings.NewReader(string(data)))
		if err != nil {
			if !errors.Is(err, ErrBadNotice) {
				t.Fatalf("error %v does not wrap ErrBadNotice", err)
			}
			return
		}
		if !slices.Contains(Kinds, spec.Kind) || spec.In < 0 || spec.DeadlineIn < 0 || (!spec.At.IsZero() && spec.In != 0) {
			t.Fatalf("accepted %q as %+v", data, spec)
		}
		again, err := json.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeNotice(strings.NewReader(string(again)))
		if err != nil {
			t.Fatalf("re-decoding %s: %v", again, err)
		}
		if back.Kind != spec.Kind || !back.At.Equal(spec.At) || back.In != spec.In || back.DeadlineIn != spec.DeadlineIn {
			t.Fatalf("round trip %+v -> %s -> %+v", spec, again, back)
		}
	})
}
