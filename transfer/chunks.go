package transfer

import "path/filepath"

// ChunkRef says where the store holds a chunk: in which sealed checkpoint,
// which file, at which offset. A delta transfer asks for the chunks it
// cannot find this way.
type ChunkRef struct {
	// Dir is the checkpoint's directory; Seq its seq.
	Dir string
	Seq uint64
	// Path is the file, relative to the checkpoint's files directory,
	// slash-separated as in the manifest.
	Path   string
	Offset int64
	Size   int64
}

// File returns the path of the chunk's file on disk.
func (r ChunkRef) File() string {
	return nativePath(filepath.Join(r.Dir, filesName), r.Path)
}

// Chunks indexes every chunk of the sealed checkpoints of workload (those
// List shows) by its hex SHA-256. Where several hold a chunk, the newest
// checkpoint wins, as the last to be pruned. The index comes from the
// manifests: a reader must check the hash of the bytes it reads.
func (s *Store) Chunks(workload string) (map[string]ChunkRef, error) {
	list, err := s.List(workload)
	if err != nil {
		return nil, err
	}
	refs := make(map[string]ChunkRef)
	for _, c := range list {
		m := c.Manifest
		for i := range m.Files {
			f := &m.Files[i]
			var off int64
			for _, ch := range f.Chunks {
				refs[ch.Hash] = ChunkRef{Dir: c.Dir, Seq: m.Seq, Path: f.Path, Offset: off, Size: ch.Size}
				off += ch.Size
			}
		}
	}
	return refs, nil
}
