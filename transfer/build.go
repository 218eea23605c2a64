package transfer

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
)

// BuildManifest walks the checkpoint tree dir and returns its manifest:
// every regular file and directory (a symlink, device, socket or pipe is
// an error), every file hashed in chunks of chunkSize bytes
// (DefaultChunkSize if 0). The tree must not change meanwhile.
func BuildManifest(dir string, info Info, chunkSize int64) (*Manifest, error) {
	return buildManifest(dir, info, chunkSize, false)
}

// buildManifest is BuildManifest; with seal it also makes the tree private
// (files 0600, directories 0700, modes recorded before) and, unless
// info.Volatile, durable (every file and directory fsynced).
func buildManifest(dir string, info Info, chunkSize int64, seal bool) (*Manifest, error) {
	if chunkSize == 0 {
		chunkSize = DefaultChunkSize
	}
	m := &Manifest{
		Version: ManifestVersion, Workload: info.Workload, Epoch: info.Epoch, Seq: info.Seq,
		Mode: info.Mode, CreatedAt: info.CreatedAt.UTC(), ChunkSize: chunkSize, Meta: maps.Clone(info.Meta),
		Volatile: info.Volatile,
	}
	m.normalize()
	if err := m.validateHeader(); err != nil {
		return nil, fmt.Errorf("build manifest of %s: %w: %v", dir, ErrBadManifest, err)
	}
	entries, err := walkTree(dir, seal)
	if err != nil {
		return nil, fmt.Errorf("build manifest of %s: %w", dir, err)
	}
	if m.Files, err = hashTree(dir, entries, chunkSize); err != nil {
		return nil, fmt.Errorf("build manifest of %s: %w", dir, err)
	}
	if seal && !m.Volatile {
		if err := syncTree(dir, entries); err != nil {
			return nil, fmt.Errorf("seal %s: %w", dir, err)
		}
	}
	m.normalize()
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("build manifest of %s: %w", dir, err)
	}
	return m, nil
}

// hashTree hashes every regular file of entries (found under root) and
// returns the manifest's entries. A file whose size changes while it is
// hashed is an error.
func hashTree(root string, entries []entry, chunkSize int64) ([]File, error) {
	files := make([]File, len(entries))
	chunks := make([][]int64, len(entries))
	for i, e := range entries {
		files[i] = File{Path: e.rel, Size: e.size, Mode: e.mode}
	}
	// First the boundaries (content-defined, cutChunks), then the hashes.
	err := parallel(len(entries), func(i int, buf []byte) error {
		e := entries[i]
		if e.size == 0 {
			return nil
		}
		f, err := os.Open(nativePath(root, e.rel))
		if err != nil {
			return errorf(e.rel, err, "%v", err)
		}
		defer f.Close()
		if chunks[i], err = cutChunks(f, e.size, chunkSize, buf); err != nil {
			return errorf(e.rel, err, "%v", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	total := 0
	for i, c := range chunks {
		if total += len(c); total > MaxChunks {
			return nil, errorf(entries[i].rel, nil, "more than %d chunks in the checkpoint (chunk size %d)", MaxChunks, chunkSize)
		}
		if len(c) > 0 {
			files[i].Chunks = make([]Chunk, len(c))
		}
	}
	segs := planSegments(chunks)
	err = parallel(len(segs), func(i int, buf []byte) error {
		s := segs[i]
		f := &files[s.file]
		k := s.first
		err := hashSegment(nativePath(root, f.Path), s, buf, func(size int64, sum *[sha256.Size]byte) error {
			f.Chunks[k] = Chunk{Size: size, Hash: hex.EncodeToString(sum[:])}
			k++
			return nil
		})
		if err != nil {
			return &fileError{path: f.Path, chunk: k, problem: err.Error(), err: err}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return files, checkSizes(root, entries)
}

// checkSizes reports a regular file whose size is not what the walk found:
// it changed while it was hashed.
func checkSizes(root string, entries []entry) error {
	for _, e := range entries {
		if e.dir {
			continue
		}
		fi, err := os.Lstat(nativePath(root, e.rel))
		if err != nil {
			return errorf(e.rel, err, "%v", err)
		}
		if fi.Size() != e.size {
			return errorf(e.rel, nil, "size changed from %d to %d while it was hashed", e.size, fi.Size())
		}
	}
	return nil
}

// syncTree fsyncs every file of entries, then every directory, then root.
func syncTree(root string, entries []entry) error {
	err := parallel(len(entries), func(i int, _ []byte) error {
		if entries[i].dir {
			return nil
		}
		return syncPath(nativePath(root, entries[i].rel))
	})
	if err != nil {
		return err
	}
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].dir {
			if err := syncPath(nativePath(root, entries[i].rel)); err != nil {
				return err
			}
		}
	}
	return syncPath(root)
}

// syncPath fsyncs the file or directory at p.
func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// nativePath joins root and a manifest's slash-separated path.
func nativePath(root, rel string) string {
	return filepath.Join(root, filepath.FromSlash(rel))
}
