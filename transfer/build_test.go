package transfer

import (
	"bytes"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestBuildManifest(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, tree{
		"a-b":         "x",
		"a/":          "",
		"a/b/c":       "0123456789", // 2.5 chunks of 4
		"a/b/exact":   "abcd",       // exactly one chunk
		"a/empty":     "",
		"empty-dir/":  "",
		"pages-1.img": "ppppqqqq",
	})
	if err := os.Chmod(filepath.Join(dir, "a/empty"), 0o400); err != nil {
		t.Fatal(err)
	}
	inf := info("counter", 5)
	m, err := BuildManifest(dir, inf, 4)
	if err != nil {
		t.Fatal(err)
	}
	inf.Meta["criu.log_size"] = "changed later"
	want := []File{
		{Path: "a", Mode: ModeDir | 0o755},
		{Path: "a-b", Mode: 0o644, Size: 1, Chunks: []Chunk{{1, hashOf("x")}}},
		{Path: "a/b", Mode: ModeDir | 0o755},
		{Path: "a/b/c", Mode: 0o644, Size: 10, Chunks: []Chunk{{4, hashOf("0123")}, {4, hashOf("4567")}, {2, hashOf("89")}}},
		{Path: "a/b/exact", Mode: 0o644, Size: 4, Chunks: []Chunk{{4, hashOf("abcd")}}},
		{Path: "a/empty", Mode: 0o400},
		{Path: "empty-dir", Mode: ModeDir | 0o755},
		{Path: "pages-1.img", Mode: 0o644, Size: 8, Chunks: []Chunk{{4, hashOf("pppp")}, {4, hashOf("qqqq")}}},
	}
	if len(m.Files) != len(want) {
		t.Fatalf("files = %+v", m.Files)
	}
	for i := range want {
		if g, w := m.Files[i], want[i]; g.Path != w.Path || g.Mode != w.Mode || g.Size != w.Size || !equalChunks(g.Chunks, w.Chunks) {
			t.Errorf("file %d = %+v, want %+v", i, g, w)
		}
	}
	if m.Workload != "counter" || m.Seq != 5 || m.Epoch != 7 || m.ChunkSize != 4 || !m.CreatedAt.Equal(at) || m.Meta["criu.log_size"] != "1234" {
		t.Errorf("header = %+v", m)
	}
	if m.Bytes() != 23 {
		t.Errorf("Bytes = %d", m.Bytes())
	}
	if fi, _ := os.Stat(filepath.Join(dir, "a/empty")); fi.Mode().Perm() != 0o400 {
		t.Errorf("BuildManifest changed a mode: %v", fi.Mode())
	}
}

func equalChunks(a, b []Chunk) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestBuildManifestDefaultChunkSize(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, tree{"f": strings.Repeat("z", DefaultChunkSize+1)})
	m, err := BuildManifest(dir, info("w", 1), 0)
	if err != nil {
		t.Fatal(err)
	}
	if m.ChunkSize != DefaultChunkSize || len(m.Files[0].Chunks) != 2 || m.Files[0].Chunks[1].Size != 1 {
		t.Fatalf("manifest = %+v", m)
	}
}

func TestBuildManifestRejects(t *testing.T) {
	cases := []struct {
		name, want string
		setup      func(t *testing.T, dir string) (string, Info, int64)
	}{
		{"symlink", "a/link: is a symlink", func(t *testing.T, dir string) (string, Info, int64) {
			writeTree(t, dir, tree{"a/x": "x"})
			must(t, os.Symlink("x", filepath.Join(dir, "a/link")))
			return dir, info("w", 1), 0
		}},
		{"fifo", "p: is a named pipe", func(t *testing.T, dir string) (string, Info, int64) {
			must(t, syscall.Mkfifo(filepath.Join(dir, "p"), 0o600))
			return dir, info("w", 1), 0
		}},
		{"socket", "s: is a socket", func(t *testing.T, dir string) (string, Info, int64) {
			l, err := net.Listen("unix", filepath.Join(dir, "s"))
			must(t, err)
			t.Cleanup(func() { l.Close() })
			return dir, info("w", 1), 0
		}},
		{"root is a file", "not a directory", func(t *testing.T, dir string) (string, Info, int64) {
			writeTree(t, dir, tree{"f": "x"})
			return filepath.Join(dir, "f"), info("w", 1), 0
		}},
		{"root missing", "no such file", func(t *testing.T, dir string) (string, Info, int64) {
			return filepath.Join(dir, "nope"), info("w", 1), 0
		}},
		{"root is a symlink", "not a directory", func(t *testing.T, dir string) (string, Info, int64) {
			must(t, os.Symlink(t.TempDir(), filepath.Join(dir, "l")))
			return filepath.Join(dir, "l"), info("w", 1), 0
		}},
		{"mode none", `mode "none"`, func(t *testing.T, dir string) (string, Info, int64) {
			i := info("w", 1)
			i.Mode = "none"
			return dir, i, 0
		}},
		{"bad workload", "workload id", func(t *testing.T, dir string) (string, Info, int64) {
			return dir, info("../w", 1), 0
		}},
		{"chunk size", "chunk_size 67108865", func(t *testing.T, dir string) (string, Info, int64) {
			return dir, info("w", 1), MaxChunkSize + 1
		}},
		{"too many chunks", "more than 262144 chunks", func(t *testing.T, dir string) (string, Info, int64) {
			f, err := os.Create(filepath.Join(dir, "sparse"))
			must(t, err)
			must(t, f.Truncate(MaxChunks+1))
			must(t, f.Close())
			return dir, info("w", 1), 1
		}},
		{"invalid utf-8 name", "not UTF-8", func(t *testing.T, dir string) (string, Info, int64) {
			writeTree(t, dir, tree{"bad\xff": "x"})
			return dir, info("w", 1), 0
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, inf, cs := tc.setup(t, t.TempDir())
			_, err := BuildManifest(dir, inf, cs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestBuildManifestChunking compares BuildManifest with a plain reference
// chunker over random sizes and chunk sizes around the segment and buffer
// boundaries.
func TestBuildManifestChunking(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := []int64{0, 1, readBufSize - 1, readBufSize, readBufSize + 1, segmentBytes, segmentBytes + 3, 3*segmentBytes/2 + 7}
	chunkSizes := []int64{1 << 10, 3000, readBufSize, readBufSize + 5, segmentBytes + 1, 20 << 20}
	data := make([]byte, 3*segmentBytes/2+7)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	dir := t.TempDir()
	for i, size := range sizes {
		must(t, os.WriteFile(filepath.Join(dir, string(rune('a'+i))), data[:size], 0o644))
	}
	for _, cs := range chunkSizes {
		m, err := BuildManifest(dir, info("w", 1), cs)
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range m.Files {
			if want := refChunks(data[:sizes[i]], cutSizes(t, data[:sizes[i]], cs)); !equalChunks(f.Chunks, want) {
				t.Fatalf("chunk size %d, file of %d bytes: %d chunks, want %d", cs, sizes[i], len(f.Chunks), len(want))
			}
		}
	}
}

// refChunks hashes b in chunks of the given sizes, the obvious way.
func refChunks(b []byte, sizes []int64) []Chunk {
	var out []Chunk
	for _, n := range sizes {
		out = append(out, Chunk{Size: n, Hash: hashOf(string(b[:n]))})
		b = b[n:]
	}
	return out
}

// cutSizes is where cutChunks cuts b, checked against the rules: every
// chunk at most chunkSize bytes, all but the last whole pages, and all of
// b covered.
func cutSizes(t *testing.T, b []byte, chunkSize int64) []int64 {
	t.Helper()
	sizes, err := cutChunks(bytes.NewReader(b), int64(len(b)), chunkSize, make([]byte, readBufSize))
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for i, n := range sizes {
		sum += n
		if n <= 0 || n > chunkSize || chunkSize >= 2*pageSize && i < len(sizes)-1 && n%pageSize != 0 {
			t.Fatalf("chunk size %d: chunk %d of %d bytes", chunkSize, i, n)
		}
	}
	if sum != int64(len(b)) {
		t.Fatalf("chunks add up to %d, want %d", sum, len(b))
	}
	return sizes
}
