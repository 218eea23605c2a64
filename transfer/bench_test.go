package transfer

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

const benchBytes = 64 << 20

// writeRandom writes a file of n random bytes at p.
func writeRandom(b *testing.B, p string, n int) {
	buf := make([]byte, n)
	rng := rand.NewChaCha8([32]byte{1})
	rng.Read(buf)
	must(b, os.MkdirAll(filepath.Dir(p), 0o700))
	must(b, os.WriteFile(p, buf, 0o600))
}

// BenchmarkBuildManifest hashes one 64 MiB file (warm page cache).
func BenchmarkBuildManifest(b *testing.B) {
	dir := b.TempDir()
	writeRandom(b, filepath.Join(dir, "pages-1.img"), benchBytes)
	b.SetBytes(benchBytes)
	for b.Loop() {
		if _, err := BuildManifest(dir, info("w", 1), DefaultChunkSize); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify verifies a sealed checkpoint of one 64 MiB file (warm
// page cache).
func BenchmarkVerify(b *testing.B) {
	s := openStore(b, 0)
	st, err := s.Stage("w")
	must(b, err)
	writeRandom(b, filepath.Join(st.Dir, "pages-1.img"), benchBytes)
	c, err := s.Seal(st, info("w", 1))
	must(b, err)
	b.SetBytes(benchBytes)
	for b.Loop() {
		if err := s.Verify(c, c.Digest); err != nil {
			b.Fatal(err)
		}
	}
}
