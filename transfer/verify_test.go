package transfer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVerifyDetectsCorruption(t *testing.T) {
	pages := strings.Repeat("p", 2*DefaultChunkSize+100) // three chunks
	files := tree{"pages-1.img": pages, "dir/x": "small", "empty/": ""}
	flip := func(c *Checkpoint, rel string, off int64) {
		p := filepath.Join(c.FilesDir(), rel)
		b, err := os.ReadFile(p)
		must(t, err)
		b[off] ^= 0x40
		must(t, os.WriteFile(p, b, 0o600))
	}
	cases := []struct {
		name    string
		damage  func(c *Checkpoint)
		want    string // wantDigest passed to Verify
		path    string
		chunk   int
		problem string
	}{
		{"flipped byte", func(c *Checkpoint) { flip(c, "pages-1.img", DefaultChunkSize+5) }, "",
			"files/pages-1.img", 1, "sha256 mismatch"},
		{"flipped last byte", func(c *Checkpoint) { flip(c, "pages-1.img", int64(len(pages)-1)) }, "",
			"files/pages-1.img", 2, "sha256 mismatch"},
		{"same size, other bytes", func(c *Checkpoint) {
			must(t, os.WriteFile(filepath.Join(c.FilesDir(), "dir/x"), []byte("SMALL"), 0o600))
		}, "",
			"files/dir/x", 0, "sha256 mismatch"},
		{"truncated", func(c *Checkpoint) {
			must(t, os.Truncate(filepath.Join(c.FilesDir(), "pages-1.img"), DefaultChunkSize))
		}, "",
			"files/pages-1.img", -1, "size 262144, the manifest says 524388"},
		{"grown", func(c *Checkpoint) { must(t, os.Truncate(filepath.Join(c.FilesDir(), "dir/x"), 6)) }, "",
			"files/dir/x", -1, "size 6, the manifest says 5"},
		{"extra file", func(c *Checkpoint) { writeTree(t, c.FilesDir(), tree{"extra": ""}) }, "",
			"files/extra", -1, "not in the manifest"},
		{"extra dir", func(c *Checkpoint) { writeTree(t, c.FilesDir(), tree{"empty/sub/": ""}) }, "",
			"files/empty/sub", -1, "not in the manifest"},
		{"extra symlink", func(c *Checkpoint) { must(t, os.Symlink("x", filepath.Join(c.FilesDir(), "dir/y"))) }, "",
			"files/dir/y", -1, "is a symlink"},
		{"missing file", func(c *Checkpoint) { must(t, os.Remove(filepath.Join(c.FilesDir(), "dir/x"))) }, "",
			"files/dir/x", -1, "missing"},
		{"missing dir", func(c *Checkpoint) { must(t, os.Remove(filepath.Join(c.FilesDir(), "empty"))) }, "",
			"files/empty", -1, "missing"},
		{"file became dir", func(c *Checkpoint) {
			must(t, os.Remove(filepath.Join(c.FilesDir(), "dir/x")))
			must(t, os.Mkdir(filepath.Join(c.FilesDir(), "dir/x"), 0o700))
		}, "", "files/dir/x", -1, "is a directory, the manifest has a file"},
		{"no files dir", func(c *Checkpoint) { must(t, os.RemoveAll(c.FilesDir())) }, "",
			"files", -1, "no such file"},
		{"wrong digest", func(c *Checkpoint) {}, strings.Repeat("0", 64),
			"manifest.json", -1, "want 0000"},
		{"garbled manifest", func(c *Checkpoint) { must(t, os.WriteFile(filepath.Join(c.Dir, manifestName), []byte("{"), 0o600)) }, "",
			"manifest.json", -1, "bad manifest"},
		{"manifest replaced", func(c *Checkpoint) {
			m := *c.Manifest
			m.Epoch++
			b, err := m.Encode()
			must(t, err)
			must(t, os.WriteFile(filepath.Join(c.Dir, manifestName), b, 0o600))
		}, "", "manifest.json", -1, "when the checkpoint was loaded"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, 0)
			c := seal(t, s, "counter", 3, files)
			must(t, s.Verify(c, c.Digest))
			tc.damage(c)
			err := s.Verify(c, tc.want)
			corruptAt(t, err, tc.path, tc.chunk, tc.problem)
		})
	}
}

func TestVerifyMessage(t *testing.T) {
	s := openStore(t, 0)
	c := seal(t, s, "counter", 3, tree{"pages-1.img": strings.Repeat("x", 18*DefaultChunkSize)})
	p := filepath.Join(c.FilesDir(), "pages-1.img")
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	must(t, err)
	_, err = f.WriteAt([]byte{'y'}, 17*DefaultChunkSize+9)
	must(t, err)
	must(t, f.Close())
	err = s.Verify(c, c.Digest)
	if want := "checkpoint counter#3: files/pages-1.img chunk 17: sha256 mismatch"; err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

// TestVerifyAfterGet verifies a checkpoint as a restore finds it: through
// Get, with the digest Raft committed.
func TestVerifyAfterGet(t *testing.T) {
	s := openStore(t, 0)
	sealed := seal(t, s, "w", 1, nested)
	c, err := s.Get("w", 1)
	must(t, err)
	must(t, s.Verify(c, sealed.Digest))
	bare := &Checkpoint{Dir: c.Dir} // no manifest or digest: what is on disk counts
	must(t, s.Verify(bare, sealed.Digest))
}
