package transfer

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// Verify checks the sealed checkpoint c on disk: its manifest.json still
// parses, its digest equals wantDigest (when not empty; typically what
// Raft committed) and c.Digest, and the files are exactly those of the
// manifest with every size and every chunk's SHA-256 matching. Every
// failure is a *CorruptError (errors.Is ErrCorrupt) naming the file and
// chunk, like "checkpoint counter#3: files/pages-1.img chunk 17: sha256
// mismatch"; an entry on disk that the manifest lacks is corrupt too.
func (s *Store) Verify(c *Checkpoint, wantDigest string) error {
	name := c.name()
	m, digest, err := readManifest(c.Dir)
	if err != nil {
		return &CorruptError{Checkpoint: name, Path: manifestName, Chunk: -1, Problem: err.Error(), Err: err}
	}
	if wantDigest != "" && digest != wantDigest {
		return &CorruptError{Checkpoint: name, Path: manifestName, Chunk: -1,
			Problem: fmt.Sprintf("digest %s, want %s", digest, wantDigest)}
	}
	if c.Digest != "" && digest != c.Digest {
		return &CorruptError{Checkpoint: name, Path: manifestName, Chunk: -1,
			Problem: fmt.Sprintf("digest %s, but %s when the checkpoint was loaded", digest, c.Digest)}
	}
	if err := verifyTree(c.FilesDir(), m); err != nil {
		var fe *fileError
		if !errors.As(err, &fe) {
			return &CorruptError{Checkpoint: name, Chunk: -1, Problem: err.Error(), Err: err}
		}
		p := filesName
		if fe.path != "" {
			p += "/" + fe.path
		}
		return &CorruptError{Checkpoint: name, Path: p, Chunk: fe.chunk, Problem: fe.problem, Err: fe.err}
	}
	return nil
}

// verifyTree checks the tree under root against m's entries and hashes.
func verifyTree(root string, m *Manifest) error {
	entries, err := walkTree(root, false)
	if err != nil {
		return err
	}
	if err := compareTree(entries, m.Files); err != nil {
		return err
	}
	segs := planSegments(chunkSizesOf(m.Files))
	err = parallel(len(segs), func(i int, buf []byte) error {
		return verifySegment(root, &m.Files[segs[i].file], segs[i], buf)
	})
	if err != nil {
		return err
	}
	return checkSizes(root, entries)
}

// verifySegment hashes one segment of the file f and compares each chunk
// with the manifest's.
func verifySegment(root string, f *File, s segment, buf []byte) error {
	k := s.first
	var hx [2 * sha256.Size]byte
	err := hashSegment(nativePath(root, f.Path), s, buf, func(size int64, sum *[sha256.Size]byte) error {
		hex.Encode(hx[:], sum[:])
		if want := f.Chunks[k]; size != want.Size || string(hx[:]) != want.Hash {
			return &fileError{path: f.Path, chunk: k, problem: "sha256 mismatch"}
		}
		k++
		return nil
	})
	var fe *fileError
	switch {
	case err == nil || errors.As(err, &fe):
		return err
	case errors.Is(err, errShortRead):
		return &fileError{path: f.Path, chunk: k, problem: "truncated while it was read", err: err}
	}
	return &fileError{path: f.Path, chunk: k, problem: err.Error(), err: err}
}

// compareTree reports the first difference, by path, between the entries
// on disk and those of a manifest: an extra or missing entry, a file where
// a directory should be or the other way round, or a wrong size.
func compareTree(disk []entry, files []File) error {
	i, j := 0, 0
	for i < len(disk) || j < len(files) {
		switch {
		case j == len(files) || (i < len(disk) && disk[i].rel < files[j].Path):
			return errorf(disk[i].rel, nil, "not in the manifest")
		case i == len(disk) || files[j].Path < disk[i].rel:
			return errorf(files[j].Path, nil, "missing")
		}
		d, f := disk[i], &files[j]
		switch {
		case d.dir && !f.IsDir():
			return errorf(d.rel, nil, "is a directory, the manifest has a file")
		case !d.dir && f.IsDir():
			return errorf(d.rel, nil, "is a file, the manifest has a directory")
		case d.size != f.Size:
			return errorf(d.rel, nil, "size %d, the manifest says %d", d.size, f.Size)
		}
		i, j = i+1, j+1
	}
	return nil
}
