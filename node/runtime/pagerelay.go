package runtime

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/checkpoint-restore/go-criu/v7/crit"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pagemap"
)

// The page relay between CRIU's lazy-pages daemon and the old holder's
// page server prefetches. The daemon asks for the one page each fault
// touches, and every ask crosses the network to the frozen process; the
// pages a resumed process needs first lie close together (a goroutine's
// stack, the spans of the heap it allocates from). So when the daemon asks
// for fewer than prefetchPages pages, the relay asks the page server for
// prefetchPages, within the lazy run of the pagemap that holds the first,
// gives the daemon what it asked for and keeps the rest; a later ask that
// the kept pages cover is answered here, without the network. Answers
// reach the daemon in the order of its asks, as from the page server.
//
// The protocol (CRIU 4.2, seen on the wire): every message starts with a
// 32-byte header, little-endian: u32 command, 4 bytes of padding, u64
// page count, u64 address, u64 destination (which process's pages). The
// daemon asks with PS_IOV_GET; the page server answers with a header (the
// pages it sends, from that address) and the pages. Anything else the
// daemon sends turns the relay into a plain copy from there on.

const (
	psHeaderSize = 32
	psIOVGet     = 7
	psPageSize   = 4096
	// prefetchPages is how many pages the relay asks for when the daemon
	// asks for fewer.
	prefetchPages = 16
	// prefetchKeep bounds the pages kept and not yet asked for.
	prefetchKeep = 32 << 20
)

// psHeader is one message header of the page-server protocol.
type psHeader struct {
	cmd, pad  uint32
	nr, vaddr uint64
	dst       uint64
}

func parsePS(b []byte) psHeader {
	return psHeader{cmd: binary.LittleEndian.Uint32(b), pad: binary.LittleEndian.Uint32(b[4:]),
		nr: binary.LittleEndian.Uint64(b[8:]), vaddr: binary.LittleEndian.Uint64(b[16:]), dst: binary.LittleEndian.Uint64(b[24:])}
}

func (h psHeader) put(b []byte) {
	binary.LittleEndian.PutUint32(b, h.cmd)
	binary.LittleEndian.PutUint32(b[4:], h.pad)
	binary.LittleEndian.PutUint64(b[8:], h.nr)
	binary.LittleEndian.PutUint64(b[16:], h.vaddr)
	binary.LittleEndian.PutUint64(b[24:], h.dst)
}

// lazyRun is one run of pages the page server serves: [start, end).
type lazyRun struct{ start, end uint64 }

// Pagemap entry flag PE_LAZY (criu/include/pagemap.h).
const pageLazy = 1 << 1

// lazyRuns reads the runs of pages a lazy checkpoint leaves to the page
// server: its pagemap's entries marked lazy and not in the pages file,
// sorted. It returns nil (no prefetch) unless the checkpoint is of one
// process: the relay does not map the protocol's destinations to
// processes.
func lazyRuns(imagesDir string) ([]lazyRun, error) {
	maps, err := filepath.Glob(filepath.Join(imagesDir, "pagemap-*.img"))
	if err != nil || len(maps) != 1 {
		return nil, err
	}
	f, err := os.Open(maps[0])
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, err := crit.New(f, nil, "", false, true).Decode(&pagemap.PagemapEntry{})
	if err != nil {
		return nil, fmt.Errorf("%s is damaged: %w", filepath.Base(maps[0]), err)
	}
	var runs []lazyRun
	for _, e := range img.Entries {
		pe, ok := e.Message.(*pagemap.PagemapEntry)
		if !ok || pe.Flags == nil {
			continue
		}
		if fl := pe.GetFlags(); fl&pageLazy != 0 && fl&pagePresent == 0 {
			runs = append(runs, lazyRun{pe.GetVaddr(), pe.GetVaddr() + nrPages(pe)*psPageSize})
		}
	}
	slices.SortFunc(runs, func(a, b lazyRun) int {
		switch {
		case a.start < b.start:
			return -1
		case a.start > b.start:
			return 1
		}
		return 0
	})
	return runs, nil
}

// pageRelay prefetches for one daemon connection (see above).
type pageRelay struct {
	runs []lazyRun

	mu    sync.Mutex // guards kept and bytes
	kept  map[[2]uint64][]byte
	bytes int

	stats RelayStats // forward's alone until relayPages returns
}

// RelayStats counts what a page relay did.
type RelayStats struct {
	Asks     int // the daemon's asks for pages
	Answered int // of them, answered from prefetched pages
	Widened  int // of them, widened to prefetch
}

// relayAsk is one of the daemon's asks, in order: answered from kept
// pages, or by the page server (sent pages asked for), or the end of
// parsing (copy).
type relayAsk struct {
	h    psHeader
	sent uint64
	kept [][]byte
	copy bool
}

// relayPages relays between the daemon's connection and the page
// server's until either ends, prefetching within runs (see above).
func relayPages(daemon net.Conn, server io.ReadWriteCloser, runs []lazyRun) RelayStats {
	p := &pageRelay{runs: runs, kept: map[[2]uint64][]byte{}}
	asks := make(chan relayAsk, 4096)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(asks)
		_ = p.forward(daemon, server, asks)
		_ = server.Close()
		_ = daemon.Close()
	}()
	_ = p.answer(server, daemon, asks)
	_ = daemon.Close()
	_ = server.Close()
	for range asks { // let forward finish
	}
	wg.Wait()
	return p.stats
}

// forward reads the daemon's asks, answers what kept pages cover and
// sends the rest to the page server, widened.
func (p *pageRelay) forward(daemon io.Reader, server io.Writer, asks chan<- relayAsk) error {
	buf := make([]byte, psHeaderSize)
	for {
		if _, err := io.ReadFull(daemon, buf); err != nil {
			return err
		}
		h := parsePS(buf)
		if h.cmd != psIOVGet || h.nr == 0 {
			asks <- relayAsk{copy: true}
			if _, err := server.Write(buf); err != nil {
				return err
			}
			_, err := io.Copy(server, daemon)
			return err
		}
		p.stats.Asks++
		if kept := p.take(h); kept != nil {
			p.stats.Answered++
			asks <- relayAsk{h: h, kept: kept}
			continue
		}
		out := h
		out.nr = p.widen(h)
		if out.nr > h.nr {
			p.stats.Widened++
		}
		out.put(buf)
		asks <- relayAsk{h: h, sent: out.nr}
		if _, err := server.Write(buf); err != nil {
			return err
		}
	}
}

// answer sends the daemon its answers in the order of its asks.
func (p *pageRelay) answer(server io.Reader, daemon io.Writer, asks <-chan relayAsk) error {
	head := make([]byte, psHeaderSize)
	var last psHeader // the page server's latest answer: the form of ours
	for a := range asks {
		switch {
		case a.copy:
			_, err := io.Copy(daemon, server)
			return err
		case a.kept != nil:
			h := last
			h.nr, h.vaddr, h.dst = a.h.nr, a.h.vaddr, a.h.dst
			h.put(head)
			if _, err := daemon.Write(slices.Concat(append([][]byte{head}, a.kept...)...)); err != nil {
				return err
			}
			continue
		}
		if _, err := io.ReadFull(server, head); err != nil {
			return err
		}
		h := parsePS(head)
		if h.nr > a.sent {
			return fmt.Errorf("page relay: the page server sent %d pages for an ask of %d", h.nr, a.sent)
		}
		data := make([]byte, h.nr*psPageSize)
		if _, err := io.ReadFull(server, data); err != nil {
			return err
		}
		last = h
		give := h.nr
		if h.vaddr == a.h.vaddr && h.dst == a.h.dst && h.nr > a.h.nr {
			give = a.h.nr
			p.keep(h, a.h.nr, data)
		}
		out := h
		out.nr = give
		out.put(head)
		if _, err := daemon.Write(append(head, data[:give*psPageSize]...)); err != nil {
			return err
		}
	}
	return nil
}

// take removes and returns the kept pages that cover h, or nil (and
// drops any it holds of h: they come again from the page server).
func (p *pageRelay) take(h psHeader) [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	pages := make([][]byte, 0, h.nr)
	for i := range h.nr {
		b, ok := p.kept[[2]uint64{h.dst, h.vaddr + i*psPageSize}]
		if !ok {
			break
		}
		pages = append(pages, b)
	}
	for i := range h.nr {
		k := [2]uint64{h.dst, h.vaddr + i*psPageSize}
		if _, ok := p.kept[k]; ok {
			delete(p.kept, k)
			p.bytes -= psPageSize
		}
	}
	if uint64(len(pages)) != h.nr {
		return nil
	}
	return pages
}

// widen is how many pages to ask the page server for, for an ask h.
func (p *pageRelay) widen(h psHeader) uint64 {
	if h.nr >= prefetchPages || len(p.runs) == 0 {
		return h.nr
	}
	p.mu.Lock()
	full := p.bytes >= prefetchKeep
	p.mu.Unlock()
	if full {
		return h.nr
	}
	i, _ := slices.BinarySearchFunc(p.runs, h.vaddr, func(r lazyRun, v uint64) int {
		switch {
		case r.end <= v:
			return -1
		case r.start > v:
			return 1
		}
		return 0
	})
	if i == len(p.runs) || p.runs[i].start > h.vaddr || p.runs[i].end <= h.vaddr {
		return h.nr
	}
	return max(h.nr, min(prefetchPages, (p.runs[i].end-h.vaddr)/psPageSize))
}

// keep stores the pages of an answer h past the first asked.
func (p *pageRelay) keep(h psHeader, asked uint64, data []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := asked; i < h.nr; i++ {
		k := [2]uint64{h.dst, h.vaddr + i*psPageSize}
		if _, ok := p.kept[k]; !ok {
			p.bytes += psPageSize
		}
		p.kept[k] = data[i*psPageSize : (i+1)*psPageSize]
	}
}
