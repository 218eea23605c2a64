package runtime

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/checkpoint-restore/go-criu/v7/crit"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pagemap"
	"google.golang.org/protobuf/encoding/protowire"
)

// Pagemap entry flags (criu/include/pagemap.h).
const (
	pageInParent = 1 << 0 // PE_PARENT: the pages are in the parent image
	pagePresent  = 1 << 2 // PE_PRESENT: the pages are in this image's pages file
)

// checkPages checks that every task's pages image holds exactly the pages
// its pagemap lists. CRIU 4.2.1 does not check this itself: on a pages
// image cut short its restorer loops forever on preadv returning 0 and
// writes gigabytes of log a minute, so a truncated checkpoint must never
// reach it. (Flipped bytes inside the pages CRIU cannot see at all: the
// store's manifest hashes are what catch those.)
func checkPages(imagesDir string) error {
	maps, err := filepath.Glob(filepath.Join(imagesDir, "pagemap-*.img"))
	if err != nil {
		return err
	}
	for _, m := range maps {
		if err := checkPagemap(imagesDir, m); err != nil {
			return err
		}
	}
	return nil
}

// checkPagemap checks one task's pagemap against its pages file.
func checkPagemap(imagesDir, path string) error {
	img, err := decodePagemap(path)
	if err != nil {
		return err
	}
	if img.Magic != "PAGEMAP" || len(img.Entries) == 0 {
		return nil // a shared-memory pagemap: other layout, not checked here
	}
	head, err := pagemapHead(img, path)
	if err != nil {
		return err
	}
	var want int64
	for _, e := range img.Entries[1:] {
		if pe, ok := e.Message.(*pagemap.PagemapEntry); ok && inPagesFile(pe) {
			want += int64(nrPages(pe)) * int64(os.Getpagesize())
		}
	}
	pages := filepath.Join(imagesDir, fmt.Sprintf("pages-%d.img", head.GetPagesId()))
	st, err := os.Stat(pages)
	if err != nil {
		return err
	}
	if st.Size() != want {
		return fmt.Errorf("%s holds %d bytes but %s lists %d: the checkpoint is damaged",
			filepath.Base(pages), st.Size(), filepath.Base(path), want)
	}
	return nil
}

// decodePagemap reads the pagemap image at path.
func decodePagemap(path string) (*crit.CriuImage, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, err := crit.New(f, nil, "", false, true).Decode(&pagemap.PagemapEntry{})
	if err != nil {
		return nil, fmt.Errorf("%s is damaged: %w", filepath.Base(path), err)
	}
	return img, nil
}

// pagemapHead is the head of the pagemap image img, read from path.
func pagemapHead(img *crit.CriuImage, path string) (*pagemap.PagemapHead, error) {
	if len(img.Entries) > 0 {
		if head, ok := img.Entries[0].Message.(*pagemap.PagemapHead); ok {
			return head, nil
		}
	}
	return nil, fmt.Errorf("%s has no pagemap head", filepath.Base(path))
}

// inPagesFile reports whether the entry's pages are in this image's pages
// file: present and not in a parent image. PE_LAZY alone says nothing: a
// plain dump writes lazy-capable pages too and marks them present; a
// lazy-pages dump leaves them out and does not.
func inPagesFile(pe *pagemap.PagemapEntry) bool {
	if pe.Flags == nil {
		return !pe.GetInParent()
	}
	fl := pe.GetFlags()
	return fl&pagePresent != 0 && fl&pageInParent == 0
}

// pagemapNrPages64 is the field where CRIU ≥ 4.0 keeps an entry's page
// count (uint64), leaving the old uint32 field 2 at zero. go-criu v7.2.0
// predates it, so it arrives as an unknown field.
const pagemapNrPages64 = 5

// nrPages is an entry's page count, from whichever field CRIU used.
func nrPages(pe *pagemap.PagemapEntry) uint64 {
	if n := pe.GetNrPages(); n != 0 {
		return uint64(n)
	}
	b := pe.ProtoReflect().GetUnknown()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0
		}
		b = b[n:]
		if num == pagemapNrPages64 && typ == protowire.VarintType {
			v, _ := protowire.ConsumeVarint(b)
			return v
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return 0
		}
		b = b[n:]
	}
	return 0
}
