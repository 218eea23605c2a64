package runtime

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pagemap"
	"google.golang.org/protobuf/proto"
)

// TestHotPlan: the hot plan holds the runs of the extents (touching runs
// joined) shorter than a page pipe, the smallest first, within
// hotPagesMax; an extent of a page pipe or longer is bulk, even where its
// pieces are short.
func TestHotPlan(t *testing.T) {
	runs := []lazyRun{
		{page(0), page(1)},
		{page(2), page(5)}, {page(5), page(5 + pipeRunPages)}, {page(5 + pipeRunPages), page(10 + pipeRunPages)}, // one extent
		{page(3000), page(3420)},
		{page(4000), page(4010)},
	}
	want := []lazyRun{{page(0), page(1)}, {page(4000), page(4010)}, {page(3000), page(3420)}}
	if got := hotPlan(runs); !slices.Equal(got, want) {
		t.Fatalf("hot plan %v, want %v", got, want)
	}
	var many []lazyRun
	for i := range uint64(hotPagesMax/100 + 10) {
		many = append(many, lazyRun{page(i * 200), page(i*200 + 100)})
	}
	var n uint64
	for _, r := range hotPlan(many) {
		n += r.pages()
	}
	if n > hotPagesMax || n < hotPagesMax-100 {
		t.Fatalf("the hot plan of many runs holds %d pages, want at most %d and near it", n, hotPagesMax)
	}
}

// writePagemap writes a pagemap image of pid 1 with the given entries,
// its pages in pages-7.img.
func writePagemap(t *testing.T, dir string, entries ...*pagemap.PagemapEntry) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "pagemap-1.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img := &crit.CriuImage{Magic: "PAGEMAP", Entries: []*crit.CriuEntry{{Message: &pagemap.PagemapHead{PagesId: proto.Uint32(7)}}}}
	for _, e := range entries {
		img.Entries = append(img.Entries, &crit.CriuEntry{Message: e})
	}
	if err := crit.New(nil, f, "", false, false).Encode(img); err != nil {
		t.Fatal(err)
	}
}

func pmEntry(vaddr uint64, nr uint32, flags uint32) *pagemap.PagemapEntry {
	return &pagemap.PagemapEntry{Vaddr: proto.Uint64(vaddr), NrPages: proto.Uint32(nr), Flags: proto.Uint32(flags)}
}

// TestWriteHotImages: the working copy's pagemap marks the hot run
// present and its pages sit in the pages image between those of the
// entries around it; the other lazy run stays lazy; the checkpoint it
// was copied from, linked, is not written.
func TestWriteHotImages(t *testing.T) {
	from, work := t.TempDir(), t.TempDir()
	writePagemap(t, from,
		pmEntry(page(0), 2, pagePresent),
		pmEntry(page(10), 3, pageLazy),
		pmEntry(page(20), 1, pageLazy),
		pmEntry(page(30), 1, pagePresent))
	old := slices.Concat(fakePage(page(0)), fakePage(page(1)), fakePage(page(30)))
	if err := os.WriteFile(filepath.Join(from, "pages-7.img"), old, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(from, "core-1.img"), []byte("core"), 0o600); err != nil {
		t.Fatal(err)
	}
	oldMap, err := os.ReadFile(filepath.Join(from, "pagemap-1.img"))
	if err != nil {
		t.Fatal(err)
	}
	if err := linkImages(from, work); err != nil {
		t.Fatal(err)
	}
	hotData := slices.Concat(fakePage(page(10)), fakePage(page(11)), fakePage(page(12)))
	hot := []hotRun{{lazyRun: lazyRun{page(10), page(13)}, data: hotData}}
	if err := writeHotImages(from, work, lazyPlan{dst: 1}, hot); err != nil {
		t.Fatal(err)
	}

	if err := checkPages(work); err != nil {
		t.Fatalf("the working copy does not hold the pages its pagemap lists: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(work, "pages-7.img"))
	if err != nil {
		t.Fatal(err)
	}
	if want := slices.Concat(fakePage(page(0)), fakePage(page(1)), hotData, fakePage(page(30))); !bytes.Equal(got, want) {
		t.Fatalf("the working copy's pages image is not the old pages with the hot run's between (%d bytes, want %d)", len(got), len(want))
	}
	plan, err := lazyRuns(work)
	if err != nil {
		t.Fatal(err)
	}
	if want := []lazyRun{{page(20), page(21)}}; !slices.Equal(plan.runs, want) {
		t.Fatalf("lazy runs left %v, want %v", plan.runs, want)
	}
	if b, err := os.ReadFile(filepath.Join(work, "core-1.img")); err != nil || string(b) != "core" {
		t.Fatalf("core-1.img in the working copy: %q, %v", b, err)
	}
	if b, _ := os.ReadFile(filepath.Join(from, "pages-7.img")); !bytes.Equal(b, old) {
		t.Fatal("the checkpoint's pages image was written")
	}
	if b, _ := os.ReadFile(filepath.Join(from, "pagemap-1.img")); !bytes.Equal(b, oldMap) {
		t.Fatal("the checkpoint's pagemap was written")
	}

	wrong := []hotRun{{lazyRun: lazyRun{page(20), page(21)}, data: hotData}}
	if err := writeHotImages(from, work, lazyPlan{dst: 1}, wrong); err == nil {
		t.Fatal("a hot run of 3 pages' data was written for an entry of 1")
	}
}
