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
	file  int     // index of the file in the caller's list
	first int     // index of the segment's first chunk in its file
	off   int64   // byte offset of that chunk
	sizes []int64 // the sizes of the segment's chunks, in order
}

// length is the segment's size in bytes.
func (s segment) length() int64 {
	var n int64
	for _, c := range s.sizes {
		n += c
	}
	return n
}

// planSegments cuts files, given each one's chunk sizes, into segments of
// about segmentBytes on chunk boundaries. A file without chunks has no
// segments.
func planSegments(chunks [][]int64) []segment {
	var segs []segment
	for i, sizes := range chunks {
		var off, segLen int64
		first := 0
		for k, c := range sizes {
			segLen += c
			if segLen >= segmentBytes || k == len(sizes)-1 {
				segs = append(segs, segment{file: i, first: first, off: off, sizes: sizes[first : k+1]})
				off += segLen
				first, segLen = k+1, 0
			}
		}
	}
	return segs
}

// chunkSizesOf lists the chunk sizes of every file of m.
func chunkSizesOf(files []File) [][]int64 {
	out := make([][]int64, len(files))
	for i := range files {
		sizes := make([]int64, len(files[i].Chunks))
		for k, c := range files[i].Chunks {
			sizes[k] = c.Size
		}
		out[i] = sizes
	}
	return out
}

// hashRange hashes consecutive chunks of r from off, of the given sizes,
// through buf, calling emit for each chunk in order with its size and
// SHA-256. It stops at emit's first error.
func hashRange(r io.ReaderAt, off int64, sizes []int64, buf []byte, emit func(size int64, sum *[sha256.Size]byte) error) error {
	h := sha256.New()
	var sum [sha256.Size]byte
	k, filled := 0, int64(0) // the current chunk and how much of it is hashed
	var length int64
	for _, c := range sizes {
		length += c
	}
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
			take := min(int64(len(p)), sizes[k]-filled)
			h.Write(p[:take])
			filled, p = filled+take, p[take:]
			if filled == sizes[k] {
				if err := emit(filled, (*[sha256.Size]byte)(h.Sum(sum[:0]))); err != nil {
					return err
				}
				h.Reset()
				k, filled = k+1, 0
			}
		}
		done += int64(n)
	}
	return nil
}

// hashSegment opens the file at name and hashes one segment of it.
func hashSegment(name string, s segment, buf []byte, emit func(size int64, sum *[sha256.Size]byte) error) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return hashRange(f, s.off, s.sizes, buf, emit)
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
