package transfer

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sampleManifest is a valid manifest with a directory, an empty file and
// a file of two and a half chunks of 4 bytes.
func sampleManifest() *Manifest {
	return &Manifest{
		Version: 1, Workload: "counter", Epoch: 9, Seq: 3, Mode: ModeCRIU, CreatedAt: at, ChunkSize: 4,
		Files: []File{
			{Path: "a", Mode: 0o644, Size: 10, Chunks: []Chunk{
				{Size: 4, Hash: hashOf("aaaa")}, {Size: 4, Hash: hashOf("bbbb")}, {Size: 2, Hash: hashOf("cc")}}},
			{Path: "d", Mode: ModeDir | 0o755},
			{Path: "d/empty", Mode: 0o600},
		},
		Meta: map[string]string{"criu.log_size": "1234", "k": "<&>"},
	}
}

func TestEncodeIsCanonical(t *testing.T) {
	m := sampleManifest()
	a, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	other := sampleManifest()
	other.CreatedAt = at.In(time.FixedZone("x", 5*3600))                // same instant, another zone
	other.Files[2].Chunks = []Chunk{}                                   // empty, not nil
	other.Meta = map[string]string{"k": "<&>", "criu.log_size": "1234"} // another insertion order
	b, err := other.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("equal manifests encode differently:\n%s\n%s", a, b)
	}
	if m.Digest() != digestOf(a) || len(m.Digest()) != 64 {
		t.Fatalf("Digest %q is not the SHA-256 of Encode", m.Digest())
	}
	if !bytes.Contains(a, []byte(`"path":"d/empty","size":0,"mode":384,"chunks":[]`)) {
		t.Fatalf("an entry without chunks does not encode as chunks:[]: %s", a)
	}
	noMeta := sampleManifest()
	noMeta.Meta = map[string]string{}
	if b, _ := noMeta.Encode(); bytes.Contains(b, []byte("meta")) {
		t.Fatalf("empty meta encoded: %s", b)
	}
}

func TestParseManifestRoundTrip(t *testing.T) {
	m := sampleManifest()
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	m.normalize()
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, m)
	}
	if got.Bytes() != 10 || got.Digest() != m.Digest() {
		t.Fatalf("Bytes %d, digest %s", got.Bytes(), got.Digest())
	}
}

func TestEncodeRejectsInvalid(t *testing.T) {
	m := sampleManifest()
	m.Version = 2
	if _, err := m.Encode(); !errors.Is(err, ErrBadManifest) {
		t.Fatalf("Encode of a bad manifest: %v", err)
	}
	if m.Digest() != "" {
		t.Fatal("a bad manifest has a digest")
	}
}

// rawJSON encodes m without validating it.
func rawJSON(t *testing.T, m *Manifest) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseManifestRejects(t *testing.T) {
	chunk := func(size int64, s string) Chunk { return Chunk{Size: size, Hash: hashOf(s)} }
	cases := []struct {
		name, want string
		edit       func(m *Manifest)
	}{
		{"version", "unknown version 2", func(m *Manifest) { m.Version = 2 }},
		{"no version", "unknown version 0", func(m *Manifest) { m.Version = 0 }},
		{"workload empty", "workload id is empty", func(m *Manifest) { m.Workload = "" }},
		{"workload slash", "holds a '/'", func(m *Manifest) { m.Workload = "a/b" }},
		{"workload dotdot", "starts with '.'", func(m *Manifest) { m.Workload = ".." }},
		{"mode", `mode "none"`, func(m *Manifest) { m.Mode = "none" }},
		{"chunk size 0", "chunk_size 0", func(m *Manifest) { m.ChunkSize = 0 }},
		{"chunk size negative", "chunk_size -4", func(m *Manifest) { m.ChunkSize = -4 }},
		{"chunk size too big", "chunk_size 67108865", func(m *Manifest) { m.ChunkSize = MaxChunkSize + 1 }},
		{"absolute path", "is absolute", func(m *Manifest) { m.Files[0].Path = "/a" }},
		{"dotdot path", "leaves the checkpoint", func(m *Manifest) { m.Files[0].Path = "../a" }},
		{"unclean path", "not clean", func(m *Manifest) { m.Files[0].Path = "./a" }},
		{"double slash", "not clean", func(m *Manifest) { m.Files[0].Path = "a//b" }},
		{"trailing slash", "not clean", func(m *Manifest) { m.Files[0].Path = "a/" }},
		{"empty path", "empty path", func(m *Manifest) { m.Files[0].Path = "" }},
		{"dot path", "empty path", func(m *Manifest) { m.Files[0].Path = "." }},
		{"nul in path", "NUL", func(m *Manifest) { m.Files[0].Path = "a\x00" }},
		{"long component", "component of 256 bytes", func(m *Manifest) { m.Files[0].Path = strings.Repeat("x", 256) }},
		{"duplicate", "not sorted and unique", func(m *Manifest) { m.Files[1] = m.Files[0] }},
		{"unsorted", "not sorted and unique", func(m *Manifest) { m.Files[0].Path = "e" }},
		{"parent missing", `parent "x" is not listed`, func(m *Manifest) { m.Files[2].Path = "x/y" }},
		{"parent is a file", `parent "a" is not listed`, func(m *Manifest) { m.Files[1].Path = "a/b"; m.Files[2].Path = "b" }},
		{"size not sum", "chunks add up to 10", func(m *Manifest) { m.Files[0].Size = 11 }},
		{"negative size", "negative", func(m *Manifest) { m.Files[2].Size = -1 }},
		{"empty last chunk", "chunk 2: size 0 is outside 1-4", func(m *Manifest) { m.Files[0].Chunks[2].Size = 0; m.Files[0].Size = 8 }},
		{"long last chunk", "chunk 2: size 5 is outside 1-4", func(m *Manifest) { m.Files[0].Chunks[2].Size = 5; m.Files[0].Size = 13 }},
		{"uppercase hash", "not lowercase hex", func(m *Manifest) { m.Files[0].Chunks[0].Hash = strings.ToUpper(hashOf("aaaa")) }},
		{"short hash", "want 64", func(m *Manifest) { m.Files[0].Chunks[0].Hash = "abcd" }},
		{"non-hex hash", "not lowercase hex", func(m *Manifest) { m.Files[0].Chunks[0].Hash = strings.Repeat("g", 64) }},
		{"mode bits", "bits other than", func(m *Manifest) { m.Files[0].Mode = 0o4755 }},
		{"dir with size", "directory has size 1", func(m *Manifest) { m.Files[1].Size = 1 }},
		{"dir with chunks", "directory has size 0 and 1 chunks", func(m *Manifest) { m.Files[1].Chunks = []Chunk{chunk(1, "x")} }},
		{"meta key", "meta key", func(m *Manifest) { m.Meta[""] = "x" }},
		{"meta value", "more than 1024", func(m *Manifest) { m.Meta["k"] = strings.Repeat("v", 1025) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := sampleManifest()
			tc.edit(m)
			_, err := ParseManifest(rawJSON(t, m))
			if !errors.Is(err, ErrBadManifest) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrBadManifest saying %q", err, tc.want)
			}
		})
	}
}

func TestParseManifestRejectsJSON(t *testing.T) {
	good := string(rawJSON(t, sampleManifest()))
	cases := []struct{ name, in, want string }{
		{"empty", "", "EOF"},
		{"not json", "hello", "invalid character"},
		{"null", "null", "unknown version 0"},
		{"array", "[]", "cannot unmarshal"},
		{"unknown field", strings.Replace(good, `"version":1`, `"version":1,"extra":true`, 1), `unknown field "extra"`},
		{"trailing data", good + "{}", "data after the manifest"},
		{"string size", strings.Replace(good, `"chunk_size":4`, `"chunk_size":"4"`, 1), "cannot unmarshal"},
		{"float size", strings.Replace(good, `"chunk_size":4`, `"chunk_size":4.5`, 1), "cannot unmarshal"},
		{"negative seq", strings.Replace(good, `"seq":3`, `"seq":-3`, 1), "cannot unmarshal"},
		{"year", strings.Replace(good, `"2025-06-01T12:00:00.123456789Z"`, `"0000-01-01T00:00:00+01:00"`, 1), "year -1"},
		{"too large", good + strings.Repeat(" ", MaxManifestSize), "more than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseManifest([]byte(tc.in))
			if !errors.Is(err, ErrBadManifest) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrBadManifest saying %q", err, tc.want)
			}
		})
	}
	if _, err := ParseManifest([]byte(" \n" + good + "\n")); err != nil {
		t.Fatalf("whitespace around a manifest: %v", err)
	}
}

func TestValidateBounds(t *testing.T) {
	m := sampleManifest()
	m.Files = make([]File, MaxFiles+1)
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "files, more than") {
		t.Fatalf("too many files: %v", err)
	}
	m = sampleManifest()
	m.ChunkSize = 1
	h := hashOf("x")
	chunks := make([]Chunk, MaxChunks+1)
	for i := range chunks {
		chunks[i] = Chunk{Size: 1, Hash: h}
	}
	m.Files = []File{{Path: "big", Size: int64(len(chunks)), Chunks: chunks}}
	if err := m.Validate(); !errors.Is(err, ErrBadManifest) || !strings.Contains(err.Error(), "chunks") {
		t.Fatalf("too many chunks: %v", err)
	}
	m.Files[0].Chunks = chunks[:MaxChunks]
	m.Files[0].Size = MaxChunks
	if err := m.Validate(); err != nil {
		t.Fatalf("MaxChunks chunks: %v", err)
	}
	m.Meta = map[string]string{}
	for i := range maxMetaEntries + 1 {
		m.Meta[strings.Repeat("k", i+1)] = ""
	}
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "meta has 65 entries") {
		t.Fatalf("too much meta: %v", err)
	}
}

func TestBytes(t *testing.T) {
	m := sampleManifest()
	m.Files = append(m.Files, File{Path: "z", Size: 1, Chunks: []Chunk{{Size: 1, Hash: hashOf("z")}}})
	if m.Bytes() != 11 {
		t.Fatalf("Bytes = %d, want 11", m.Bytes())
	}
	if (&Manifest{}).Bytes() != 0 {
		t.Fatal("empty manifest has bytes")
	}
}
