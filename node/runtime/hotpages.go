package runtime

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/pagemap"
	"google.golang.org/protobuf/proto"
)

// Hot pages: a lazy restore does not start from the checkpoint's images
// as they came, but from a working copy in which the runs of pages the
// relay (pagerelay.go) has fetched whole by then (its hot plan, the small
// extents: hotPlan) are present, their pages in the pages image. CRIU maps
// those in during the restore like any checkpoint's pages, so the resumed
// process never faults on them; the daemon fetches only the runs still
// lazy. The relay fetches while the lazy-pages daemon and criu swrk
// start; the restore then waits for the rest of the hot plan at most
// hotPagesWait, and writes a few MiB.

// hotPagesMax bounds the pages a restore takes in as hot: they are
// written to disk and read back on its critical path.
const hotPagesMax = 2048

// hotPagesWait bounds how long a restore waits for the hot pages once the
// daemon and criu swrk are up.
const hotPagesWait = 15 * time.Millisecond

// hotRun is a lazy run fetched whole, with its pages.
type hotRun struct {
	lazyRun
	data []byte
}

// writeHotImages turns work, a copy of the lazy checkpoint in from
// (links), into one in which the runs in hot (sorted) are present, their
// pages in the pages image. It writes new files beside the links and
// renames them over: the checkpoint in from is never written.
func writeHotImages(from, work string, plan lazyPlan, hot []hotRun) error {
	mapName := fmt.Sprintf("pagemap-%d.img", plan.dst)
	raw, err := os.ReadFile(filepath.Join(from, mapName))
	if err != nil {
		return err
	}
	img, err := decodePagemap(filepath.Join(from, mapName))
	if err != nil {
		return err
	}
	head, err := pagemapHead(img, mapName)
	if err != nil {
		return err
	}
	pagesName := fmt.Sprintf("pages-%d.img", head.GetPagesId())
	oldPages, err := os.Open(filepath.Join(from, pagesName))
	if err != nil {
		return err
	}
	defer oldPages.Close()
	newPages, err := os.Create(filepath.Join(work, pagesName+".hot"))
	if err != nil {
		return err
	}
	defer newPages.Close()
	var out bytes.Buffer
	out.Write(raw[:8]) // the image's magic numbers, as CRIU wrote them
	for i, e := range img.Entries {
		if i > 0 {
			if err := hotEntry(e.Message, oldPages, newPages, hot); err != nil {
				return fmt.Errorf("%s: %w", mapName, err)
			}
		}
		b, err := proto.Marshal(e.Message)
		if err != nil {
			return err
		}
		out.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(b))))
		out.Write(b)
	}
	if err := newPages.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(work, mapName+".hot"), out.Bytes(), 0o600); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(work, pagesName+".hot"), filepath.Join(work, pagesName)); err != nil {
		return err
	}
	return os.Rename(filepath.Join(work, mapName+".hot"), filepath.Join(work, mapName))
}

// hotEntry copies the pages of one pagemap entry m from the old pages
// image to the new, or writes the pages of the hot run it is and marks it
// present.
func hotEntry(m proto.Message, oldPages io.Reader, newPages io.Writer, hot []hotRun) error {
	pe, ok := m.(*pagemap.PagemapEntry)
	if !ok {
		return errors.New("an entry that is not a pagemap entry")
	}
	n := nrPages(pe)
	if inPagesFile(pe) {
		_, err := io.CopyN(newPages, oldPages, int64(n)*psPageSize)
		return err
	}
	i, found := slices.BinarySearchFunc(hot, pe.GetVaddr(), func(h hotRun, v uint64) int { return cmpUint(h.start, v) })
	if !found || pe.GetFlags()&pageLazy == 0 {
		return nil
	}
	if h := hot[i]; h.pages() != n || uint64(len(h.data)) != n*psPageSize {
		return fmt.Errorf("the hot run at %#x has %d pages, its entry %d", h.start, len(h.data)/psPageSize, n)
	}
	if _, err := newPages.Write(hot[i].data); err != nil {
		return err
	}
	pe.Flags = proto.Uint32(pe.GetFlags()&^pageLazy | pagePresent)
	return nil
}

// linkImages makes the empty directory work a copy of the images in
// from: hard links, or copies where links cannot be made.
func linkImages(from, work string) error {
	entries, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			if err := linkOrCopy(filepath.Join(from, e.Name()), filepath.Join(work, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// linkOrCopy makes dst the file src: a hard link, or a copy.
func linkOrCopy(src, dst string) error {
	if os.Link(src, dst) == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// The hot plan, and the relay's part in it: it fetches the plan ahead
// (prefetch) and hands the runs it has whole to the restore (takeHot).

// pipeRunPages is the longest run CRIU's page pipes hold: a longer run
// of memory is cut into runs this long.
const pipeRunPages = 1024

// hotPlan is what the relay fetches ahead, for the restore to take in
// (hotpages.go): the runs of the extents (runs that touch, joined) shorter
// than pipeRunPages, the smallest extents first, at most hotPagesMax
// pages. A longer extent is bulk data: a buffer, a cache, a ballast.
func hotPlan(runs []lazyRun) []lazyRun {
	var extents [][]lazyRun // runs sorted by address: touching ones are neighbours
	for i, r := range runs {
		if i > 0 && runs[i-1].end == r.start {
			extents[len(extents)-1] = append(extents[len(extents)-1], r)
			continue
		}
		extents = append(extents, []lazyRun{r})
	}
	size := func(e []lazyRun) uint64 { return (e[len(e)-1].end - e[0].start) / psPageSize }
	slices.SortStableFunc(extents, func(a, b []lazyRun) int { return cmpUint(size(a), size(b)) })
	var hot []lazyRun
	var n uint64
	for _, e := range extents {
		if size(e) >= pipeRunPages || n+size(e) > hotPagesMax {
			break
		}
		n += size(e)
		hot = append(hot, e...)
	}
	return hot
}

// prefetch asks for all the runs of the hot plan at once: their many
// asks cost one round trip, not one each. (A fault waits behind what is
// in flight, at most hotPagesMax pages, and only until the hot plan is
// in, mostly before the restore.)
func (p *pageRelay) prefetch() {
	defer p.fetched.Done()
	for _, r := range p.hot {
		for v := r.start; v < r.end; {
			p.mu.Lock()
			for v < r.end && p.state[v] != 0 {
				v += psPageSize
			}
			p.mu.Unlock()
			if v == r.end {
				break
			}
			k, err := p.ask(v, min(askPages, (r.end-v)/psPageSize), true)
			if err != nil {
				return
			}
			v += k * psPageSize
		}
	}
}

// whole reports whether all pages of r are here.
func (p *pageRelay) whole(r lazyRun) bool {
	for v := r.start; v < r.end; v += psPageSize {
		if _, ok := p.here[v]; !ok {
			return false
		}
	}
	return true
}

// takeHot waits up to wait for the runs of the hot plan to be here, then
// takes those that are, sorted by address (see hotpages.go): they are
// given, as if to the daemon.
func (p *pageRelay) takeHot(wait time.Duration) []hotRun {
	timer := time.AfterFunc(wait, func() {
		p.mu.Lock()
		p.waited = true
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer timer.Stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.err == nil && !p.waited && len(p.hot) > 0 && !p.whole(p.hot[len(p.hot)-1]) {
		p.cond.Wait()
	}
	p.waited = true
	var hot []hotRun
	var n uint64
	for _, r := range p.hot {
		if !p.whole(r) {
			continue
		}
		h := hotRun{lazyRun: r, data: make([]byte, 0, r.pages()*psPageSize)}
		for v := r.start; v < r.end; v += psPageSize {
			h.data = append(h.data, p.here[v]...)
			delete(p.here, v)
			p.state[v] = pageGiven
		}
		n += r.pages()
		hot = append(hot, h)
	}
	p.stats.Hot += int(n)
	p.cond.Broadcast()
	slices.SortFunc(hot, func(a, b hotRun) int { return cmpUint(a.start, b.start) })
	return hot
}
