package transfer

import (
	"encoding/binary"
	"io"
)

// Chunk boundaries are content-defined at page granularity. A chunk ends
// after a page whose content says "cut" (about one page in cutOdds past
// the minimum), so that pages inserted or removed early in a file move
// the later boundaries with them and the later chunks still match the
// previous checkpoint's. That is what CRIU's page images need: they hold
// the process's pages in address order, and a few pages mapped or freed
// below a large, mostly unchanged region shift all of it. Fixed-size
// chunks would then differ everywhere after the shift.
const (
	pageSize      = 4096
	minChunkPages = 8  // 32 KiB: no cut before
	cutOdds       = 32 // a page past the minimum cuts with probability 1/cutOdds
)

// cutChunks reads size bytes of r and returns the sizes of its chunks:
// each ends on a page boundary chosen by content, holds at least
// minChunkPages pages and at most maxChunk bytes; the last may be shorter.
// A maxChunk under two pages gives fixed chunks of maxChunk bytes.
func cutChunks(r io.ReaderAt, size, maxChunk int64, buf []byte) ([]int64, error) {
	if size == 0 {
		return nil, nil
	}
	maxPages := maxChunk / pageSize
	if maxPages < 2 {
		return fixedChunks(size, maxChunk), nil
	}
	minPages := min(int64(minChunkPages), maxPages/2)
	buf = buf[:len(buf)/pageSize*pageSize]
	var sizes []int64
	var cur int64 // bytes in the chunk being cut
	for off := int64(0); off < size; {
		want := min(int64(len(buf)), size-off)
		n, err := r.ReadAt(buf[:want], off)
		if int64(n) < want {
			if err == nil || err == io.EOF {
				err = errShortRead
			}
			return nil, err
		}
		for p := int64(0); p < want; p += pageSize {
			page := buf[p:min(p+pageSize, want)]
			cur += int64(len(page))
			pages := cur / pageSize
			if len(page) == pageSize && (pages >= maxPages || pages >= minPages && cutsAfter(page)) {
				sizes = append(sizes, cur)
				cur = 0
			}
		}
		off += want
	}
	if cur > 0 {
		sizes = append(sizes, cur)
	}
	return sizes, nil
}

// cutsAfter decides from a page's content whether a chunk may end after
// it: a mix of eight words spread over the page, which an all-zero page
// never passes (so runs of zero pages do not cut at every minimum).
func cutsAfter(page []byte) bool {
	var h uint64
	for i := 0; i < 8; i++ {
		h = h*0x9e3779b97f4a7c15 ^ binary.LittleEndian.Uint64(page[i*pageSize/8:])
	}
	if h == 0 {
		return false
	}
	h ^= h >> 31
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 29
	return h%cutOdds == 0
}

// fixedChunks is size in chunks of chunkSize bytes, the last shorter.
func fixedChunks(size, chunkSize int64) []int64 {
	sizes := make([]int64, 0, (size+chunkSize-1)/chunkSize)
	for off := int64(0); off < size; off += chunkSize {
		sizes = append(sizes, min(chunkSize, size-off))
	}
	return sizes
}
