package transfer

import (
	"fmt"
	"path"
	"unicode/utf8"
)

// Bounds on Manifest.Meta.
const (
	maxMetaEntries = 64
	maxMetaKey     = 128
	maxMetaValue   = 1024
)

// Validate reports the first rule of the format the manifest breaks, as an
// error wrapping ErrBadManifest, or nil.
func (m *Manifest) Validate() error {
	if err := m.validateHeader(); err != nil {
		return fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	if err := m.validateFiles(); err != nil {
		return fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	return nil
}

// validateHeader checks every field but Files.
func (m *Manifest) validateHeader() error {
	if m.Version != ManifestVersion {
		return fmt.Errorf("unknown version %d (this node knows %d)", m.Version, ManifestVersion)
	}
	if err := ValidateWorkload(m.Workload); err != nil {
		return err
	}
	if m.Mode != ModeCRIU && m.Mode != ModeApp {
		return fmt.Errorf("mode %q is neither %q nor %q", m.Mode, ModeCRIU, ModeApp)
	}
	if y := m.CreatedAt.UTC().Year(); y < 0 || y > 9999 {
		return fmt.Errorf("created_at year %d is outside 0-9999", y)
	}
	if m.ChunkSize <= 0 || m.ChunkSize > MaxChunkSize {
		return fmt.Errorf("chunk_size %d is outside 1-%d", m.ChunkSize, MaxChunkSize)
	}
	return validateMeta(m.Meta)
}

// validateMeta bounds the checkpointer's notes.
func validateMeta(meta map[string]string) error {
	if len(meta) > maxMetaEntries {
		return fmt.Errorf("meta has %d entries, more than %d", len(meta), maxMetaEntries)
	}
	for k, v := range meta {
		switch {
		case k == "" || len(k) > maxMetaKey:
			return fmt.Errorf("meta key %q is not 1-%d bytes", k, maxMetaKey)
		case len(v) > maxMetaValue:
			return fmt.Errorf("meta %q is %d bytes, more than %d", k, len(v), maxMetaValue)
		case !utf8.ValidString(k) || !utf8.ValidString(v):
			return fmt.Errorf("meta %q is not UTF-8", k)
		}
	}
	return nil
}

// validateFiles checks the entries: paths valid, sorted and unique, each
// parent listed as a directory, chunks consistent with sizes, and the
// totals bounded.
func (m *Manifest) validateFiles() error {
	if len(m.Files) > MaxFiles {
		return fmt.Errorf("%d files, more than %d", len(m.Files), MaxFiles)
	}
	dirs := make(map[string]bool)
	chunks := 0
	for i := range m.Files {
		f := &m.Files[i]
		if err := validatePath(f.Path); err != nil {
			return fmt.Errorf("file %d: %v", i, err)
		}
		if i > 0 && f.Path <= m.Files[i-1].Path {
			return fmt.Errorf("file %q: after %q: paths are not sorted and unique", f.Path, m.Files[i-1].Path)
		}
		if dir := path.Dir(f.Path); dir != "." && !dirs[dir] {
			return fmt.Errorf("file %q: parent %q is not listed as a directory", f.Path, dir)
		}
		if f.IsDir() {
			dirs[f.Path] = true
		}
		if chunks += len(f.Chunks); chunks > MaxChunks {
			return fmt.Errorf("more than %d chunks", MaxChunks)
		}
		if err := f.validate(m.ChunkSize); err != nil {
			return fmt.Errorf("file %q: %v", f.Path, err)
		}
	}
	return nil
}

// validate checks one entry's mode, size and chunks.
func (f *File) validate(chunkSize int64) error {
	if f.Mode&^(ModeDir|0o777) != 0 {
		return fmt.Errorf("mode %#o has bits other than permissions and ModeDir", f.Mode)
	}
	if f.IsDir() {
		if f.Size != 0 || len(f.Chunks) != 0 {
			return fmt.Errorf("directory has size %d and %d chunks", f.Size, len(f.Chunks))
		}
		return nil
	}
	if f.Size < 0 {
		return fmt.Errorf("size %d is negative", f.Size)
	}
	var sum int64
	for i, c := range f.Chunks {
		if c.Size <= 0 || c.Size > chunkSize {
			return fmt.Errorf("chunk %d: size %d is outside 1-%d (the chunk size)", i, c.Size, chunkSize)
		}
		if err := validateHash(c.Hash); err != nil {
			return fmt.Errorf("chunk %d: %v", i, err)
		}
		sum += c.Size
	}
	if sum != f.Size {
		return fmt.Errorf("size %d, but its chunks add up to %d", f.Size, sum)
	}
	return nil
}
