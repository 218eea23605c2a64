package gossip

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// maximalMeta is the largest metadata a real host plausibly gossips.
func maximalMeta() Meta {
	return Meta{
		Cloud:        "oraclecloud", // not in the table: written as a literal
		Region:       "australia-southeast2",
		Zone:         "australia-southeast2-c",
		InstanceID:   "/subscriptions/0b1f6471-1bf0-4dda-aec3-111122223333/vm-7f3c9d2e-41aa-4b7e-9c1d-aabbccddeeff",
		InstanceType: "Standard_HB176-144rs_v4",
		Lifecycle:    LifecycleOnDemand,
		MemoryMiB:    24 << 20, // 24 TiB
		CPUMillis:    448_000,
		Addr:         "2001:db8:ffff:ffff:ffff:ffff:ffff:fffe",
		RaftPort:     65535,
		TransferPort: 65534,
		HTTPPort:     65533,
		IngressPort:  65532,
		State:        StateDraining,
		Deadline:     time.Date(2099, 12, 31, 23, 59, 59, 999_000_000, time.UTC),
		Role:         RoleVoter,
		Leader:       true,
		InRaft:       true,
		Modes:        []string{ModeCRIU, ModeApp, ModeNone, ModeLazyPages},
	}
}

func TestMetaRoundTrip(t *testing.T) {
	deadline := time.Date(2025, 3, 4, 5, 6, 7, 8_000_000, time.UTC)
	tests := []struct {
		name string
		meta Meta
	}{
		{"zero", Meta{}},
		{"aws spot doomed", Meta{
			Cloud: CloudAWS, Region: "us-east-1", Zone: "us-east-1a",
			InstanceID: "i-0123456789abcdef0", InstanceType: "m7g.large",
			Lifecycle: LifecycleSpot, MemoryMiB: 8192, CPUMillis: 2000,
			Addr: "10.0.3.17", RaftPort: 7947, TransferPort: 7948, HTTPPort: 7949, IngressPort: 7950,
			State: StateDoomed, Deadline: deadline, Role: RoleSpare, InRaft: true,
			Modes: []string{ModeCRIU, ModeNone},
		}},
		{"gcp leader", Meta{
			Cloud: CloudGCP, Region: "europe-west4", Zone: "europe-west4-b", InstanceID: "4567890123456789012",
			Lifecycle: LifecycleSpot, Addr: "fd00::17", State: StateAlive, Role: RoleVoter,
			Leader: true, InRaft: true, Modes: []string{ModeApp},
		}},
		{"laptop", Meta{Cloud: CloudNone, Addr: "127.0.0.1", State: StateAlive, Role: RoleMember}},
		{"unknown enum values", Meta{Cloud: "hetzner", State: "lost", Role: "witness", Lifecycle: "reserved"}},
		{"non-canonical addr kept as text", Meta{Addr: "node-1.internal"}},
		{"zoned ipv6", Meta{Addr: "fe80::1%eth0"}},
		{"v4-in-v6", Meta{Addr: "::ffff:10.1.2.3"}},
		{"pre-1970 deadline", Meta{Deadline: time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC)}},
		{"max capacity", Meta{MemoryMiB: 1<<63 - 1, CPUMillis: 1<<63 - 1}},
		{"maximal", maximalMeta()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.meta.Encode()
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got, err := DecodeMeta(b)
			if err != nil {
				t.Fatalf("DecodeMeta: %v", err)
			}
			if !reflect.DeepEqual(got, tt.meta) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, tt.meta)
			}
		})
	}
}

func TestMetaSizeRealistic(t *testing.T) {
	b, err := maximalMeta().Encode()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) >= 300 {
		t.Errorf("maximal realistic meta is %d bytes, want < 300", len(b))
	}
	t.Logf("maximal realistic meta: %d bytes", len(b))
}

func TestMetaCompact(t *testing.T) {
	m := Meta{Cloud: CloudAWS, Lifecycle: LifecycleSpot, State: StateAlive, Role: RoleVoter, Addr: "10.0.0.1"}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	// version, flags, 4 enums, 4 empty strings, addr 1+4, 4 ports, 2 capacities, deadline, modes.
	if want := 1 + 1 + 4 + 4 + 5 + 4 + 2 + 1 + 1; len(b) != want {
		t.Errorf("encoded %d bytes, want %d: %x", len(b), want, b)
	}
}

func TestMetaEncodeErrors(t *testing.T) {
	long := strings.Repeat("x", maxStringLen)
	tests := []struct {
		name string
		meta Meta
		want error
	}{
		{"string over 255", Meta{Region: long + "x"}, ErrMetaTooLarge},
		{"literal enum over 255", Meta{Cloud: long + "y"}, ErrMetaTooLarge},
		{"total over 512", Meta{Region: long, Zone: long, InstanceID: long}, ErrMetaTooLarge},
		{"negative memory", Meta{MemoryMiB: -1}, ErrInvalidMeta},
		{"negative cpu", Meta{CPUMillis: -5}, ErrInvalidMeta},
		{"unknown mode", Meta{Modes: []string{"wasm"}}, ErrInvalidMeta},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.meta.Encode()
			if !errors.Is(err, tt.want) {
				t.Fatalf("Encode = %d bytes, %v; want %v", len(b), err, tt.want)
			}
		})
	}
}

func TestDecodeMetaErrors(t *testing.T) {
	good, err := Meta{Region: "eu", Addr: "10.0.0.1"}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "empty"},
		{"version 0", []byte{0}, "unknown version 0"},
		{"only version", []byte{1}, "flags: truncated"},
		{"truncated string", good[:8], "truncated"},
		{"string too long", []byte{1, 0, 0, 0, 0, 0, 0xC8, 0x03}, "string too long"},
		{"unknown enum code", []byte{1, 0, 9}, "state: unknown code 9"},
		{"unknown addr kind", append(bytes.Clone(good[:12]), 7), "addr: unknown kind 7"},
		{"trailing bytes", append(bytes.Clone(good), 0), "1 trailing bytes"},
		{"overlong varint", append(bytes.Clone(good[:len(good)-1]), 0xFF), "truncated or overlong"},
		{"too large", make([]byte, MaxMetaSize+1), "max 512"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeMeta(tt.in)
			if !errors.Is(err, ErrBadMeta) {
				t.Fatalf("DecodeMeta = %v, want ErrBadMeta", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestDecodeMetaPortRange(t *testing.T) {
	b, _ := Meta{}.Encode()
	// Fields after the four empty strings and the empty addr: ports.
	i := 1 + 1 + 4 + 4 + 1
	b = append(append(bytes.Clone(b[:i]), 0x80, 0x80, 0x04), b[i+1:]...) // 65536
	if _, err := DecodeMeta(b); err == nil || !strings.Contains(err.Error(), "raft port: 65536 out of range") {
		t.Fatalf("DecodeMeta = %v, want raft port out of range", err)
	}
}

// A newer version appends fields and may set reserved bits; this version
// still reads what it knows.
func TestDecodeMetaNewerVersion(t *testing.T) {
	m := Meta{Cloud: CloudAzure, State: StateDoomed, InRaft: true, Modes: []string{ModeApp}}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	v2 := bytes.Clone(b)
	v2[0] = 2
	v2[1] |= 0x80                                  // a flag this version does not know
	v2[len(v2)-1] |= 0x40                          // a mode bit this version does not know
	v2 = append(v2, 0x05, 'h', 'e', 'l', 'l', 'o') // an appended field
	got, err := DecodeMeta(v2)
	if err != nil {
		t.Fatalf("DecodeMeta(v2): %v", err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Errorf("got %+v, want %+v", got, m)
	}
	v1 := bytes.Clone(v2)
	v1[0] = 1
	if _, err := DecodeMeta(v1); !errors.Is(err, ErrBadMeta) {
		t.Errorf("version 1 with trailing bytes: err = %v, want ErrBadMeta", err)
	}
}

func TestMetaDeadlineMillis(t *testing.T) {
	d := time.Date(2030, 1, 2, 3, 4, 5, 678_912_345, time.FixedZone("x", 3600))
	b, _ := Meta{Deadline: d}.Encode()
	got, err := DecodeMeta(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := d.Truncate(time.Millisecond); !got.Deadline.Equal(want) {
		t.Errorf("deadline %v, want %v", got.Deadline, want)
	}
}

func FuzzDecodeMeta(f *testing.F) {
	for _, m := range []Meta{{}, maximalMeta(), {Cloud: "x", Addr: "fe80::1%eth0", Deadline: time.UnixMilli(-1)}} {
		b, err := m.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{2, 0xFF, 0xFF, 3, 'a', 'b', 'c'})
	f.Fuzz(func(t *testing.T, b []byte) {
		m1, err := DecodeMeta(b)
		if err != nil {
			if !errors.Is(err, ErrBadMeta) {
				t.Fatalf("error %v does not wrap ErrBadMeta", err)
			}
			return
		}
		enc, err := m1.Encode()
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", m1, err)
		}
		m2, err := DecodeMeta(enc)
		if err != nil {
			t.Fatalf("re-encoded meta does not decode: %v", err)
		}
		if !reflect.DeepEqual(m1, m2) {
			t.Fatalf("unstable round trip:\n%+v\n%+v", m1, m2)
		}
		enc2, _ := m2.Encode()
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not canonical: %x vs %x", enc, enc2)
		}
	})
}
