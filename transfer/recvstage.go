package transfer

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A checkpoint being received is written under root/.staging/ into a
// directory whose name depends only on (workload, seq, digest):
//
//	recv-<16 hex of sha256(workload)>-<seq>-<first 16 hex of digest>/
//		files/...       pre-created at their sizes, filled chunk by chunk
//		manifest.json   written last, just before the rename
//
// A transfer that breaks off leaves it there; the next offer of the same
// checkpoint finds it, re-hashes what it holds against the manifest and
// asks only for the rest. Nothing needs a journal: a region never written
// reads as zeros and fails its hash (unless the chunk is all zeros, which
// is then right). Store.List never sees these directories.
const recvPrefix = "recv-"

// recvStagingName is the staging directory name of a received checkpoint.
func recvStagingName(workload string, seq uint64, digest string) string {
	return recvPrefix + workloadTag(workload) + "-" + strconv.FormatUint(seq, 10) + "-" + digest[:16]
}

// workloadTag stands for a workload id in a file name: ids may be 255
// bytes long and hold any character but "/", so they cannot be used as
// they are.
func workloadTag(workload string) string {
	sum := sha256.Sum256([]byte(workload))
	return hex.EncodeToString(sum[:8])
}

// chunkLoc says where a global chunk index points: file, chunk in file.
type chunkLoc struct {
	file, k int32
	off     int64 // the chunk's byte offset in its file
}

// chunkLocs maps every global chunk index of m to its file and chunk.
func chunkLocs(m *Manifest) []chunkLoc {
	n := 0
	for i := range m.Files {
		n += len(m.Files[i].Chunks)
	}
	locs := make([]chunkLoc, 0, n)
	for i := range m.Files {
		var off int64
		for k, c := range m.Files[i].Chunks {
			locs = append(locs, chunkLoc{file: int32(i), k: int32(k), off: off})
			off += c.Size
		}
	}
	return locs
}

// recvStaging is the staging directory of one checkpoint being received.
type recvStaging struct {
	top   string // root/.staging/recv-...
	files string // top/files
	m     *Manifest
	locs  []chunkLoc
}

// chunk returns the file and chunk that global index g points at.
func (rs *recvStaging) chunk(g uint32) (*File, int, Chunk) {
	l := rs.locs[g]
	f := &rs.m.Files[l.file]
	return f, int(l.k), f.Chunks[l.k]
}

// create makes the staging directory and the manifest's tree in it
// (directories 0700, files 0600 at their sizes), keeping what an earlier
// attempt wrote. It reports whether the directory was there already.
func (rs *recvStaging) create() (resumed bool, err error) {
	if err := os.Mkdir(filepath.Dir(rs.top), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return false, err
	}
	switch err := os.Mkdir(rs.top, 0o700); {
	case errors.Is(err, fs.ErrExist):
		resumed = true
	case err != nil:
		return false, err
	}
	if err := os.Mkdir(rs.files, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return false, err
	}
	for i := range rs.m.Files {
		if err := rs.createEntry(&rs.m.Files[i]); err != nil {
			return false, err
		}
	}
	return resumed, nil
}

// createEntry makes one directory, or one file at its size.
func (rs *recvStaging) createEntry(f *File) error {
	p := nativePath(rs.files, f.Path)
	if f.IsDir() {
		if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		return nil
	}
	h, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if err := h.Truncate(f.Size); err != nil {
		h.Close()
		return err
	}
	return h.Close()
}

// rehash marks in have the chunks that the staged files already hold
// (what an interrupted attempt wrote) and returns how many.
func (rs *recvStaging) rehash(have []bool) (int, error) {
	base := make([]int, len(rs.m.Files)) // global index of each file's first chunk
	n := 0
	for i := range rs.m.Files {
		base[i] = n
		n += len(rs.m.Files[i].Chunks)
	}
	segs := planSegments(chunkSizesOf(rs.m.Files))
	var found atomic.Int64
	err := parallel(len(segs), func(i int, buf []byte) error {
		s := segs[i]
		f := &rs.m.Files[s.file]
		k := s.first
		var hx [2 * sha256.Size]byte
		return hashSegment(nativePath(rs.files, f.Path), s, buf, func(size int64, sum *[sha256.Size]byte) error {
			hex.Encode(hx[:], sum[:])
			if c := f.Chunks[k]; c.Size == size && string(hx[:]) == c.Hash {
				have[base[s.file]+k] = true
				found.Add(1)
			}
			k++
			return nil
		})
	})
	return int(found.Load()), err
}

// zeroHashes caches the hex SHA-256 of all-zero chunks by size.
var zeroHashes sync.Map // int64 → string

// zeroHash is the hex SHA-256 of size zero bytes.
func zeroHash(size int64) string {
	if h, ok := zeroHashes.Load(size); ok {
		return h.(string)
	}
	h := sha256.New()
	var zeros [4096]byte
	for left := size; left > 0; left -= int64(len(zeros)) {
		h.Write(zeros[:min(left, int64(len(zeros)))])
	}
	s := hex.EncodeToString(h.Sum(nil))
	zeroHashes.Store(size, s)
	return s
}

// markZeros marks the chunks that are all zeros: a pre-created file
// holds them already. It returns how many.
func (rs *recvStaging) markZeros(have []bool) int {
	n := 0
	for g := range rs.locs {
		if _, _, c := rs.chunk(uint32(g)); !have[g] && c.Hash == zeroHash(c.Size) {
			have[g] = true
			n++
		}
	}
	return n
}

// copyLocal fills chunks from the sealed checkpoints that refs indexes
// (the store's earlier checkpoints of the workload), one read per
// distinct hash. The index is only a hint: what is read is hashed, and a
// chunk that does not match is left to be sent. It marks what it copied
// in have and returns how many chunks; only a failure to write the
// staging is an error.
func (rs *recvStaging) copyLocal(refs map[string]ChunkRef, have []bool) (int, error) {
	type job struct {
		ref     ChunkRef
		hash    string
		targets []uint32
	}
	byHash := make(map[string]int)
	var jobs []job
	for g := range rs.locs {
		_, _, c := rs.chunk(uint32(g))
		ref, ok := refs[c.Hash]
		if have[g] || !ok || ref.Size != c.Size {
			continue
		}
		j, ok := byHash[c.Hash]
		if !ok {
			j = len(jobs)
			byHash[c.Hash] = j
			jobs = append(jobs, job{ref: ref, hash: c.Hash})
		}
		jobs[j].targets = append(jobs[j].targets, uint32(g))
	}
	var copied atomic.Int64
	err := parallel(len(jobs), func(i int, buf []byte) error {
		j := &jobs[i]
		data := buf[:j.ref.Size]
		if !readChunk(j.ref.File(), j.ref.Offset, data, j.hash) {
			return nil
		}
		for _, g := range j.targets {
			if err := rs.write(g, data); err != nil {
				return err
			}
			have[g] = true
		}
		copied.Add(int64(len(j.targets)))
		return nil
	})
	return int(copied.Load()), err
}

// readChunk reads len(data) bytes of the file p at off and reports
// whether they were all there and hash to want.
func readChunk(p string, off int64, data []byte, want string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	if n, _ := f.ReadAt(data, off); n != len(data) {
		return false
	}
	return sumHex(data) == want
}

// sumHex is the hex SHA-256 of b.
func sumHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// write writes the bytes of global chunk g at its place in the staging.
func (rs *recvStaging) write(g uint32, data []byte) error {
	f, _, _ := rs.chunk(g)
	h, err := os.OpenFile(nativePath(rs.files, f.Path), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := h.WriteAt(data, rs.locs[g].off); err != nil {
		h.Close()
		return err
	}
	return h.Close()
}

// seal makes the staged checkpoint durable and puts it in place: it
// checks that the tree is exactly the manifest's, fsyncs every file and
// directory (not for a Volatile manifest), writes manifest.json (enc, the
// canonical bytes whose SHA-256 is the digest) and renames the whole into
// the store.
func (rs *recvStaging) seal(s *Store, enc []byte) (string, error) {
	disk, err := walkTree(rs.files, false)
	if err != nil {
		return "", err
	}
	if err := compareTree(disk, rs.m.Files); err != nil {
		return "", err
	}
	durable := !rs.m.Volatile
	if durable {
		if err := syncTree(rs.files, disk); err != nil {
			return "", err
		}
	}
	if err := writeManifest(rs.top, enc, durable); err != nil {
		return "", err
	}
	return s.sealReceived(rs.m.Workload, rs.m.Seq, rs.top, durable)
}

// sealReceived renames the received checkpoint directory top (holding
// manifest.json and files/, durable unless not durable) to
// root/<workload>/<seq>, the way Seal does, and prunes the workload to the store's keep, never the
// new one. If only pruning fails, it returns the new directory and the
// error together.
func (s *Store) sealReceived(workload string, seq uint64, top string, durable bool) (string, error) {
	st := &Staging{Dir: filepath.Join(top, filesName), store: s, workload: workload, top: top}
	s.mu.Lock()
	defer s.mu.Unlock()
	dir, err := s.renameInLocked(st, seq, durable)
	if err != nil {
		return "", err
	}
	if err := s.pruneLocked(workload, s.keep, &seq); err != nil {
		return dir, fmt.Errorf("sealed %s#%d, then: %w", workload, seq, err)
	}
	return dir, nil
}

// recvStagings lists the received-checkpoint staging directories under
// the store (names only), those of workload if it is not empty.
func recvStagings(s *Store, workload string) ([]string, error) {
	prefix := recvPrefix
	if workload != "" {
		prefix += workloadTag(workload) + "-"
	}
	des, err := os.ReadDir(filepath.Join(s.root, stagingName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, de := range des {
		if strings.HasPrefix(de.Name(), prefix) && de.IsDir() {
			names = append(names, de.Name())
		}
	}
	return names, nil
}

// touch marks a staging directory as used now, for the resume TTL.
func touch(p string, now time.Time) error { return os.Chtimes(p, now, now) }
