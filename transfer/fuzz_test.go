package transfer

import (
	"bytes"
	"reflect"
	"testing"
)

// edgeSeeds sit at the edges of the format: zone offsets, extreme times
// and numbers, null and empty lists, escapes, case-folded keys.
var edgeSeeds = []string{
	`{"version":1,"workload":"w","epoch":18446744073709551615,"seq":0,"mode":"app","created_at":"0000-01-01T00:00:00-01:00","chunk_size":67108864,"files":null}`,
	`{"version":1,"workload":"w","epoch":1,"seq":1,"mode":"criu","created_at":"9999-12-31T23:59:59.999999999Z","chunk_size":1,"files":[],"meta":{}}`,
	`{"VERSION":1,"workload":"\u00e9\ud800","epoch":1,"seq":1,"mode":"criu","created_at":"2025-01-01T00:00:00+05:30","chunk_size":1,` +
		`"files":[{"path":"d","size":0,"mode":16877,"chunks":null},{"path":"d/\u2028<&>","size":1,"mode":420,"chunks":[{"size":1,"sha256":"` + zeros + `"}]}]}`,
	`{"version":1,"workload":"w","epoch":1,"seq":1,"mode":"criu","created_at":"2025-01-01T00:00:00Z","chunk_size":2,` +
		`"files":[{"path":"a","size":3,"mode":0,"chunks":[{"size":2,"sha256":"` + zeros + `"},{"size":1,"sha256":"` + zeros + `"}]}],"meta":{"k":"v"},"meta":null}`,
}

const zeros = "0000000000000000000000000000000000000000000000000000000000000000"

// FuzzParseManifest checks that ParseManifest never panics, and that what
// it accepts encodes canonically: the encoding parses to an equal manifest
// and encodes to the same bytes.
func FuzzParseManifest(f *testing.F) {
	for _, s := range edgeSeeds {
		f.Add([]byte(s))
	}
	b, err := sampleManifest().Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	dir := f.TempDir()
	writeTree(f, dir, tree{"pages-1.img": "0123456789abcdef", "inventory.img": "i", "state/": "", "state/wal/x": "", "state/db": "dbdb"})
	real, err := BuildManifest(dir, info("counter", 4), 5)
	if err != nil {
		f.Fatal(err)
	}
	b, err = real.Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := ParseManifest(in)
		if err != nil {
			return
		}
		enc, err := m.Encode()
		if err != nil {
			t.Fatalf("parsed manifest does not encode: %v", err)
		}
		m2, err := ParseManifest(enc)
		if err != nil {
			t.Fatalf("encoding does not parse: %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed the manifest:\n%+v\n%+v", m, m2)
		}
		enc2, err := m2.Encode()
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable (%v):\n%s\n%s", err, enc, enc2)
		}
	})
}
