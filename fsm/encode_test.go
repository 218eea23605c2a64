package fsm

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, c := range sampleCommands() {
		t.Run(reflect.TypeOf(c).Name(), func(t *testing.T) {
			b := encodeOrFail(t, c)
			if CommandType(b[0]) != c.Type() || Ignorable(b) {
				t.Fatalf("type byte %#x, want %#x without the ignore flag", b[0], c.Type())
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, c) {
				t.Fatalf("Decode(Encode(c)) = %#v, want %#v", got, c)
			}
		})
	}
}

func TestEveryCommandTypeHasADecoder(t *testing.T) {
	seen := map[CommandType]bool{}
	for _, c := range sampleCommands() {
		seen[c.Type()] = true
	}
	for typ := range decoders {
		if !seen[typ] {
			t.Errorf("type %d has no sample command", typ)
		}
	}
	if len(seen) != len(decoders) {
		t.Errorf("%d sample types, %d decoders", len(seen), len(decoders))
	}
}

func TestEncodeIgnorable(t *testing.T) {
	c := HazardRecord{Hazard: Hazard{Node: "n1", Kind: "rebalance", At: t0}}
	b, err := EncodeIgnorable(c)
	if err != nil {
		t.Fatal(err)
	}
	if CommandType(b[0]) != CmdHazardRecord|IgnoreUnknownFlag || !Ignorable(b) {
		t.Fatalf("type byte %#x: want the ignore flag on %d", b[0], CmdHazardRecord)
	}
	got, err := Decode(b)
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("Decode of a known ignorable command = %#v, %v; want %#v", got, err, c)
	}
}

func TestEncodeAcceptsPointer(t *testing.T) {
	c := NodeRemove{Node: "n1"}
	b, err := Encode(&c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil || got != Command(c) {
		t.Fatalf("Decode(Encode(&c)) = %#v, %v; want the value %#v", got, err, c)
	}
}

// alien is a Command this package does not know.
type alien struct{}

func (alien) Type() CommandType { return 99 }

func TestEncodeRefuses(t *testing.T) {
	tests := []struct {
		name string
		c    Command
		want error
	}{
		{"nil", nil, ErrInvalid},
		{"nil pointer", (*NodeUpsert)(nil), ErrInvalid},
		{"unknown type", alien{}, ErrUnknownCommand},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Encode(tt.c); !errors.Is(err, tt.want) {
				t.Fatalf("Encode: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDecodeRefuses(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want error
		why  string
	}{
		{"empty", nil, ErrMalformed, "empty"},
		{"type only", []byte{byte(CmdNodeRemove)}, ErrMalformed, "not a JSON object"},
		{"null payload", append([]byte{byte(CmdNodeRemove)}, "null"...), ErrMalformed, "not a JSON object"},
		{"array payload", append([]byte{byte(CmdNodeRemove)}, "[]"...), ErrMalformed, "not a JSON object"},
		{"bad json", append([]byte{byte(CmdNodeRemove)}, `{"node":`...), ErrMalformed, "unexpected end"},
		{"wrong field type", append([]byte{byte(CmdNodeRemove)}, `{"node":3}`...), ErrMalformed, "cannot unmarshal"},
		{"trailing garbage", append([]byte{byte(CmdNodeRemove)}, `{"node":"n1"} x`...), ErrMalformed, "after top-level value"},
		{"two objects", append([]byte{byte(CmdNodeRemove)}, `{}{}`...), ErrMalformed, "after top-level value"},
		{"type zero", []byte{0, '{', '}'}, ErrUnknownCommand, "type 0"},
		{"unknown type", []byte{99, '{', '}'}, ErrUnknownCommand, "type 99"},
		{"unknown ignorable type", []byte{99 | byte(IgnoreUnknownFlag), '{', '}'}, ErrUnknownCommand, "type 99"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Decode(tt.in)
			if !errors.Is(err, tt.want) || c != nil {
				t.Fatalf("Decode = %#v, %v; want nil, %v", c, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("error %q does not say %q", err, tt.why)
			}
		})
	}
}

func TestDecodeIgnoresUnknownFields(t *testing.T) {
	in := append([]byte{byte(CmdNodeRemove)}, `{"node":"n1","added_in_v2":{"x":[1,2]}}`...)
	c, err := Decode(in)
	if err != nil || c != Command(NodeRemove{Node: "n1"}) {
		t.Fatalf("Decode = %#v, %v; want NodeRemove{n1}", c, err)
	}
}

func TestIgnorable(t *testing.T) {
	for _, tt := range []struct {
		in   []byte
		want bool
	}{
		{nil, false},
		{[]byte{byte(CmdNodeRemove)}, false},
		{[]byte{byte(IgnoreUnknownFlag)}, true},
		{[]byte{0xff, '{'}, true},
	} {
		if got := Ignorable(tt.in); got != tt.want {
			t.Errorf("Ignorable(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestEdgeSeedsDecode(t *testing.T) {
	for _, s := range edgeSeeds {
		if _, err := Decode([]byte(s)); err != nil {
			t.Errorf("edge seed %q: %v", s, err)
		}
	}
}
