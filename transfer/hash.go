package transfer

import (
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// Hashing reads every byte once, in segments of whole chunks that at most
// maxWorkers goroutines share, so that one large file (CRIU's pages image)
// still keeps both of them busy.
const (
	maxWorkers   = 2
	segmentBytes = 8 << 20 // work handed to a goroutine at a time
	readBufSize  = 1 << 20 // per goroutine, reused through bufPool
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

// errShortRead means a file ended before the size it was planned with.
var errShortRead = errors.New("file is shorter than expected")

// segment is a run of whole chunks of one file.
type segment struct {
	file   int   // index of the file in the caller's list
	first  int   // index of the segment's first chunk in its file
	off    int64 // byte offset of that chunk
	length int64
}

// planSegments cuts files of the given sizes into segments of about
// segmentBytes, on chunk boundaries. A file of size 0 has no segments.
func planSegments(sizes []int64, chunkSize int64) []segment {
	per := max(segmentBytes/chunkSize, 1) * chunkSize
	var segs []segment
	for i, size := range sizes {
		for off := int64(0); off < size; off += per {
			segs = append(segs, segment{file: i, first: int(off / chunkSize), off: off, length: min(per, size-off)})
		}
	}
	return segs
}

// chunkCount is how many chunks a file of size bytes has.
func chunkCount(size, chunkSize int64) int {
	return int((size + chunkSize - 1) / chunkSize)
}

// hashRange hashes length bytes of r from off in chunks of chunkSize
// (the last may be shorter) through buf, calling emit for each chunk in
// order with its size and SHA-256. It stops at emit's first error.
func hashRange(r io.ReaderAt, off, length, chunkSize int64, buf []byte, emit func(size int64, sum *[sha256.Size]byte) error) error {
	h := sha256.New()
	var filled int64 // bytes of the current chunk hashed so far
	var sum [sha256.Size]byte
	for done := int64(0); done < length; {
		want := min(int64(len(buf)), length-done)
		n, err := r.ReadAt(buf[:want], off+done)
		if int64(n) < want {
			if err == nil || err == io.EOF {
				err = errShortRead
			}
			return err
		}
		for p := buf[:n]; len(p) > 0; {
			take := min(int64(len(p)), chunkSize-filled)
			h.Write(p[:take])
			filled, p = filled+take, p[take:]
			if filled == chunkSize {
				if err := emit(filled, (*[sha256.Size]byte)(h.Sum(sum[:0]))); err != nil {
					return err
				}
				h.Reset()
				filled = 0
			}
		}
		done += int64(n)
	}
	if filled > 0 {
		return emit(filled, (*[sha256.Size]byte)(h.Sum(sum[:0])))
	}
	return nil
}

// hashSegment opens the file at name and hashes one segment of it.
func hashSegment(name string, s segment, chunkSize int64, buf []byte, emit func(size int64, sum *[sha256.Size]byte) error) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return hashRange(f, s.off, s.length, chunkSize, buf, emit)
}

// parallel calls fn(i, buf) for every i in [0, n) on at most maxWorkers
// goroutines, each with its own read buffer. After the first failure it
// starts no new calls; it returns the error of the lowest i that failed,
// which is the same whichever goroutine got there first.
func parallel(n int, fn func(i int, buf []byte) error) error {
	var (
		next   atomic.Int64
		failed atomic.Bool
		mu     sync.Mutex // guards errAt and firstErr
		errAt  = n
		first  error
		wg     sync.WaitGroup
	)
	work := func() {
		bp := bufPool.Get().(*[]byte)
		defer bufPool.Put(bp)
		for !failed.Load() {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			if err := fn(i, *bp); err != nil {
				failed.Store(true)
				mu.Lock()
				if i < errAt {
					errAt, first = i, err
				}
				mu.Unlock()
			}
		}
	}
	for range min(maxWorkers, n) {
		wg.Go(work)
	}
	wg.Wait()
	return first
}
