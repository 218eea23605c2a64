package emulate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"time"

	"github.com/lifeboat/lifeboat/node/cloud/kind"
)

// Notice kinds the control endpoint takes: package kind's, the ones the
// watchers read.
const (
	KindPreempt     = kind.Preempt     // AWS spot/instance-action, GCP instance/preempted, Azure Preempt
	KindRebalance   = kind.Rebalance   // an AWS rebalance recommendation
	KindMaintenance = kind.Maintenance // AWS system-reboot, GCP TERMINATE_ON_HOST_MAINTENANCE, Azure Reboot
	KindTerminate   = kind.Terminate   // AWS Auto Scaling Terminated, an Azure Terminate
)

// Kinds lists every notice kind, in the order the docs give them.
var Kinds = kind.All()

// MaxNoticeBody bounds a control request body.
const MaxNoticeBody = 64 << 10

// NoticeSpec is a decoded POST /lifeboat/notice body. The zero At and a
// zero In both mean "now"; a zero DeadlineIn means the cloud's default.
type NoticeSpec struct {
	Kind       string
	At         time.Time     // when the notice appears (absolute)
	In         time.Duration // when the notice appears (from now); never with At
	DeadlineIn time.Duration // from appearance to the instance's end
}

// noticeFields are the body's keys, in the order errors list them.
var noticeFields = []string{"kind", "at", "in", "deadline_in"}

// DecodeNotice reads {"kind": K, "at": RFC3339 | "in": DURATION,
// "deadline_in": DURATION} strictly: one JSON object, known keys only,
// string values, nothing after it. Errors wrap ErrBadNotice and name the
// field.
func DecodeNotice(r io.Reader) (NoticeSpec, error) {
	bad := func(format string, a ...any) (NoticeSpec, error) {
		return NoticeSpec{}, fmt.Errorf("%w: %s", ErrBadNotice, fmt.Sprintf(format, a...))
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxNoticeBody+1))
	if err != nil {
		return bad("reading body: %v", err)
	}
	if len(data) > MaxNoticeBody {
		return bad("body longer than %d bytes", MaxNoticeBody)
	}
	fields, err := decodeObject(data)
	if err != nil {
		return bad("%v", err)
	}
	var spec NoticeSpec
	str := map[string]string{}
	for _, k := range sortedKeys(fields) {
		if !slices.Contains(noticeFields, k) {
			return bad("unknown field %q (want %v)", k, noticeFields)
		}
		var s *string
		if err := json.Unmarshal(fields[k], &s); err != nil || s == nil {
			return bad("field %q: want a string, got %s", k, jsonKind(fields[k]))
		}
		str[k] = *s
	}
	spec.Kind = str["kind"]
	if !slices.Contains(Kinds, spec.Kind) {
		return bad("field \"kind\": %q is not one of %v", spec.Kind, Kinds)
	}
	if _, ok := str["at"]; ok {
		if _, both := str["in"]; both {
			return bad("fields \"at\" and \"in\" both given: give one")
		}
		if spec.At, err = time.Parse(time.RFC3339, str["at"]); err != nil {
			return bad("field \"at\": %q is not an RFC 3339 time such as 2006-01-02T15:04:05Z", str["at"])
		}
	}
	if s, ok := str["in"]; ok {
		if spec.In, err = parseDuration("in", s); err != nil {
			return NoticeSpec{}, err
		}
	}
	if s, ok := str["deadline_in"]; ok {
		if spec.DeadlineIn, err = parseDuration("deadline_in", s); err != nil {
			return NoticeSpec{}, err
		}
		if spec.DeadlineIn == 0 {
			return bad("field \"deadline_in\": must be positive")
		}
	}
	return spec, nil
}

// decodeObject parses exactly one JSON object, each key once, and nothing
// after it.
func decodeObject(data []byte) (map[string]json.RawMessage, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New(`empty body: want {"kind": "preempt|rebalance|maintenance|terminate", ...}`)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	syntax := func(err error) error {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("body: %v", err)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, syntax(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("body: want a JSON object, got %s", tokenKind(tok))
	}
	fields := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, syntax(err)
		}
		key, _ := tok.(string) // inside an object the decoder yields only string keys
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, syntax(err)
		}
		if _, dup := fields[key]; dup {
			return nil, fmt.Errorf("field %q given twice", key)
		}
		fields[key] = raw
	}
	if _, err := dec.Token(); err != nil {
		return nil, syntax(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("body: data after the JSON object")
	}
	return fields, nil
}

// tokenKind names a JSON token's type for an error message.
func tokenKind(tok json.Token) string {
	switch tok.(type) {
	case nil:
		return "null"
	case json.Delim:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	}
	return "a number"
}

// parseDuration reads a non-negative Go duration ("2s", "1m30s") and names
// field in its error.
func parseDuration(field, s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%w: field %q: %q is not a duration such as \"2s\" or \"2m\"", ErrBadNotice, field, s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%w: field %q: %q is negative", ErrBadNotice, field, s)
	}
	return d, nil
}

// jsonKind names the JSON type of raw for an error message.
func jsonKind(raw json.RawMessage) string {
	switch t := bytes.TrimSpace(raw); {
	case len(t) == 0:
		return "nothing"
	case t[0] == '{':
		return "an object"
	case t[0] == '[':
		return "an array"
	case t[0] == 'n':
		return "null"
	case t[0] == 't' || t[0] == 'f':
		return "a boolean"
	default:
		return "a number"
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// MarshalJSON writes the spec in the form DecodeNotice reads.
func (s NoticeSpec) MarshalJSON() ([]byte, error) {
	m := map[string]string{"kind": s.Kind}
	if !s.At.IsZero() {
		m["at"] = s.At.Format(time.RFC3339Nano)
	}
	if s.In != 0 {
		m["in"] = s.In.String()
	}
	if s.DeadlineIn != 0 {
		m["deadline_in"] = s.DeadlineIn.String()
	}
	return json.Marshal(m)
}
