package runtime

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/pagemap"
)

// The lazy plan: the runs of pages a lazy checkpoint leaves to the old
// holder's page server, read from its pagemap, which the page relay
// (pagerelay.go) fetches from and ahead in.

// lazyRun is one run of pages the page server serves: [start, end).
type lazyRun struct{ start, end uint64 }

func (r lazyRun) pages() uint64 { return (r.end - r.start) / psPageSize }

// Pagemap entry flag PE_LAZY (criu/include/pagemap.h).
const pageLazy = 1 << 1

// lazyPlan is what the relay may fetch ahead: the runs of pages a lazy
// checkpoint leaves to the page server, sorted by address, and the
// process they belong to (the page server's destination).
type lazyPlan struct {
	runs []lazyRun
	dst  uint64
}

// lazyRuns reads the plan of a lazy checkpoint from its pagemap: the
// entries marked lazy and not in the pages file. It returns a nil plan (the
// relay only copies) unless the checkpoint is of one process: the relay
// does not map the protocol's destinations to processes.
func lazyRuns(imagesDir string) (*lazyPlan, error) {
	maps, err := filepath.Glob(filepath.Join(imagesDir, "pagemap-*.img"))
	if err != nil || len(maps) != 1 {
		return nil, err
	}
	name := filepath.Base(maps[0])
	dst, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, "pagemap-"), ".img"), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%s: not a pagemap image of one process: %w", name, err)
	}
	img, err := decodePagemap(maps[0])
	if err != nil {
		return nil, err
	}
	plan := &lazyPlan{dst: dst}
	for _, e := range img.Entries {
		pe, ok := e.Message.(*pagemap.PagemapEntry)
		if !ok || pe.Flags == nil {
			continue
		}
		if fl := pe.GetFlags(); fl&pageLazy != 0 && fl&pagePresent == 0 {
			plan.runs = append(plan.runs, lazyRun{pe.GetVaddr(), pe.GetVaddr() + nrPages(pe)*psPageSize})
		}
	}
	slices.SortFunc(plan.runs, func(a, b lazyRun) int { return cmpUint(a.start, b.start) })
	return plan, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
