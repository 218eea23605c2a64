package transfer

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Manifest format limits. ParseManifest rejects anything beyond them, and
// Encode refuses to produce it, so whatever one node encodes every other
// node parses.
const (
	// ManifestVersion is the only manifest version this package knows.
	ManifestVersion = 1
	// DefaultChunkSize is the chunk size the store seals checkpoints with.
	DefaultChunkSize = 256 << 10
	// MaxChunkSize bounds a manifest's ChunkSize.
	MaxChunkSize = 64 << 20
	// MaxFiles bounds the entries (files and directories) of a manifest.
	MaxFiles = 1 << 17
	// MaxChunks bounds the chunks of a manifest, all files together
	// (64 GiB at DefaultChunkSize).
	MaxChunks = 1 << 18
	// MaxManifestSize bounds an encoded manifest, in bytes.
	MaxManifestSize = 32 << 20
)

// Checkpoint modes a manifest may name (the workload spec's
// checkpoint.mode; "none" takes no checkpoints).
const (
	ModeCRIU = "criu" // CRIU images of the process
	ModeApp  = "app"  // the application's own state files
)

// ModeDir is the bit of File.Mode that marks a directory (S_IFDIR).
const ModeDir uint32 = 0o40000

// Chunk is one piece of a file: 1 to ChunkSize bytes, the pieces in order.
type Chunk struct {
	Size int64  `json:"size"`
	Hash string `json:"sha256"` // lowercase hex SHA-256 of the chunk's bytes
}

// File is one entry of a checkpoint: a regular file, or a directory (Mode
// has ModeDir, Size is 0, no chunks). Directories are listed so that empty
// ones survive a transfer; every entry's parent directory is listed before
// it.
type File struct {
	// Path is relative to the checkpoint's files directory:
	// slash-separated, clean, no "..", no leading "/".
	Path string `json:"path"`
	Size int64  `json:"size"`
	// Mode is the permission bits (0o777) the checkpointer gave the entry,
	// plus ModeDir for a directory. At rest in the store every file is
	// 0600 and every directory 0700 whatever Mode says; a restore may apply
	// it.
	Mode   uint32  `json:"mode"`
	Chunks []Chunk `json:"chunks"`
}

// IsDir reports whether the entry is a directory.
func (f *File) IsDir() bool { return f.Mode&ModeDir != 0 }

// MarshalJSON encodes an entry without chunks with "chunks":[], so that a
// nil and an empty list encode alike.
func (f File) MarshalJSON() ([]byte, error) {
	type plain File
	if f.Chunks == nil {
		f.Chunks = []Chunk{}
	}
	return json.Marshal(plain(f))
}

// Manifest names every file and every chunk of one checkpoint. Raft commits
// its Digest; a restore verifies the files against it first.
type Manifest struct {
	Version   int       `json:"version"` // ManifestVersion
	Workload  string    `json:"workload"`
	Epoch     uint64    `json:"epoch"`
	Seq       uint64    `json:"seq"`
	Mode      string    `json:"mode"` // ModeCRIU or ModeApp
	CreatedAt time.Time `json:"created_at"`
	ChunkSize int64     `json:"chunk_size"` // the largest a chunk may be
	// Files are sorted by Path, each at most once.
	Files []File `json:"files"`
	// Meta holds the checkpointer's notes (at most 64 entries, keys of 1 to
	// 128 bytes, values of at most 1024).
	Meta map[string]string `json:"meta,omitempty"`
	// Volatile checkpoints are sealed without fsync, here and on every
	// receiver: a checkpoint that is worthless after a crash (a lazy
	// one, whose memory is in a process) need not wait for the disk. A
	// torn one fails Verify.
	Volatile bool `json:"volatile,omitempty"`
}

// Info is what a checkpoint's manifest says about it beyond its files.
type Info struct {
	Workload   string
	Epoch, Seq uint64
	Mode       string
	CreatedAt  time.Time
	Meta       map[string]string
	Volatile   bool // see Manifest.Volatile
}

// Encode returns the canonical JSON of a valid manifest: the same manifest
// always gives the same bytes (CreatedAt in UTC, Meta keys sorted, no
// whitespace). Errors wrap ErrBadManifest.
func (m *Manifest) Encode() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	c := *m
	c.CreatedAt = c.CreatedAt.UTC()
	if c.Files == nil {
		c.Files = []File{}
	}
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	if len(b) > MaxManifestSize {
		return nil, fmt.Errorf("%w: encodes to %d bytes, more than %d", ErrBadManifest, len(b), MaxManifestSize)
	}
	return b, nil
}

// Digest returns the hex SHA-256 of Encode(), or "" for a manifest that
// Encode rejects.
func (m *Manifest) Digest() string {
	b, err := m.Encode()
	if err != nil {
		return ""
	}
	return digestOf(b)
}

// digestOf returns the hex SHA-256 of b.
func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Bytes returns the size of all files together.
func (m *Manifest) Bytes() int64 {
	var n int64
	for i := range m.Files {
		n += m.Files[i].Size
	}
	return n
}

// ParseManifest decodes and validates a manifest. It is strict: unknown
// fields, trailing data and any broken rule are errors that wrap
// ErrBadManifest and say what is wrong.
func ParseManifest(b []byte) (*Manifest, error) {
	if len(b) > MaxManifestSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrBadManifest, len(b), MaxManifestSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the manifest", ErrBadManifest)
	}
	m.normalize()
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// normalize gives equal manifests equal Go values: CreatedAt in UTC, and
// nil for empty lists and maps.
func (m *Manifest) normalize() {
	m.CreatedAt = m.CreatedAt.UTC()
	if len(m.Files) == 0 {
		m.Files = nil
	}
	for i := range m.Files {
		if len(m.Files[i].Chunks) == 0 {
			m.Files[i].Chunks = nil
		}
	}
	if len(m.Meta) == 0 {
		m.Meta = nil
	}
}
