package transfer

import (
	"io"
	"os"
	"strings"
	"testing"
)

func TestChunksFindsEarlierCheckpoint(t *testing.T) {
	s := openStore(t, 3)
	a := strings.Repeat("a", DefaultChunkSize)
	b := strings.Repeat("b", DefaultChunkSize)
	c := strings.Repeat("c", DefaultChunkSize)
	first := seal(t, s, "w", 1, tree{"pages-1.img": a + b + "tail"})
	second := seal(t, s, "w", 2, tree{"pages-1.img": c + b, "state/": "", "state/new": "n"})
	seal(t, s, "other", 1, tree{"x": "only in other"})
	refs, err := s.Chunks("w")
	must(t, err)
	if len(refs) != 5 { // a, b, tail, c, n
		t.Fatalf("%d chunks: %v", len(refs), refs)
	}
	ref, ok := refs[hashOf(a)]
	if !ok || ref.Dir != first.Dir || ref.Seq != 1 || ref.Path != "pages-1.img" || ref.Offset != 0 || ref.Size != DefaultChunkSize {
		t.Fatalf("chunk a: %+v, %v", ref, ok)
	}
	if got := readRef(t, refs[hashOf("tail")]); got != "tail" {
		t.Fatalf("tail chunk reads %q", got)
	}
	if ref := refs[hashOf(b)]; ref.Dir != second.Dir || ref.Offset != DefaultChunkSize {
		t.Fatalf("a chunk in both checkpoints is not taken from the newest: %+v", ref)
	}
	if got := readRef(t, refs[hashOf("n")]); got != "n" {
		t.Fatalf("state/new reads %q", got)
	}
	if _, ok := refs[hashOf("only in other")]; ok {
		t.Fatal("another workload's chunk is indexed")
	}
	if refs, err := s.Chunks("none"); err != nil || len(refs) != 0 {
		t.Fatalf("Chunks of an unknown workload: %v, %v", refs, err)
	}
	if _, err := s.Chunks("../x"); err == nil {
		t.Fatal("bad workload accepted")
	}
}

// readRef reads the bytes a ChunkRef points at, checking their hash.
func readRef(t *testing.T, r ChunkRef) string {
	t.Helper()
	f, err := os.Open(r.File())
	must(t, err)
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, r.Offset, r.Size))
	must(t, err)
	return string(b)
}
