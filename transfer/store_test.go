package transfer

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// nested is a checkpoint tree with nested, empty and unusual entries.
var nested = tree{
	"inventory.img":       "inv",
	"pages-1.img":         strings.Repeat("p", DefaultChunkSize+17),
	"state/":              "",
	"state/db/wal/000001": "w1",
	"state/db/CURRENT":    "MANIFEST-1\n",
	"state/empty/":        "",
	"state/zero":          "",
}

func TestSealListVerify(t *testing.T) {
	s := openStore(t, 0)
	c := seal(t, s, "counter", 1, nested)
	if want := filepath.Join(s.Root(), "counter", "1"); c.Dir != want {
		t.Fatalf("Dir = %s, want %s", c.Dir, want)
	}
	if c.Digest != c.Manifest.Digest() || len(c.Manifest.Files) != 9 {
		t.Fatalf("checkpoint = %+v", c)
	}
	list, err := s.List("counter")
	if err != nil || len(list) != 1 || !reflect.DeepEqual(list[0], c) {
		t.Fatalf("List = %v, %v; want [%+v]", list, err, c)
	}
	if err := s.Verify(list[0], c.Digest); err != nil {
		t.Fatal(err)
	}
	for p, content := range nested {
		full := filepath.Join(c.FilesDir(), filepath.FromSlash(strings.TrimSuffix(p, "/")))
		if strings.HasSuffix(p, "/") {
			if fi, err := os.Stat(full); err != nil || !fi.IsDir() {
				t.Errorf("%s: %v", p, err)
			}
		} else if b, err := os.ReadFile(full); err != nil || string(b) != content {
			t.Errorf("%s: %v (%d bytes)", p, err, len(b))
		}
	}
	b, err := os.ReadFile(filepath.Join(c.Dir, manifestName))
	if err != nil || digestOf(b) != c.Digest {
		t.Fatalf("manifest.json does not hash to the digest: %v", err)
	}
	got, err := s.Get("counter", 1)
	if err != nil || got.Digest != c.Digest {
		t.Fatalf("Get = %v, %v", got, err)
	}
	latest, err := s.Latest("counter")
	if err != nil || latest.Digest != c.Digest {
		t.Fatalf("Latest = %v, %v", latest, err)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), stagingName)); err != nil {
		t.Fatal(err)
	}
	if des, _ := os.ReadDir(filepath.Join(s.Root(), stagingName)); len(des) != 0 {
		t.Fatalf("staging not empty after Seal: %v", des)
	}
}

func TestKeepPruning(t *testing.T) {
	s := openStore(t, 2)
	for seq := uint64(1); seq <= 5; seq++ {
		seal(t, s, "counter", seq, tree{"f": string(rune('a' + seq))})
		seal(t, s, "other", seq, tree{"f": "x"})
	}
	list, err := s.List("counter")
	if err != nil || !reflect.DeepEqual(seqs(list), []uint64{4, 5}) {
		t.Fatalf("List = %v, %v; want [4 5]", seqs(list), err)
	}
	if _, err := s.Get("counter", 3); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pruned checkpoint: %v", err)
	}
	must(t, s.Prune("counter", 1))
	if list, _ := s.List("counter"); !reflect.DeepEqual(seqs(list), []uint64{5}) {
		t.Fatalf("after Prune(1): %v", seqs(list))
	}
	if list, _ := s.List("other"); !reflect.DeepEqual(seqs(list), []uint64{4, 5}) {
		t.Fatalf("another workload was pruned: %v", seqs(list))
	}
	if err := s.Prune("counter", 0); err == nil {
		t.Fatal("Prune(0) accepted")
	}
	if des, _ := os.ReadDir(filepath.Join(s.Root(), stagingName)); len(des) != 0 {
		t.Fatalf("staging not empty after pruning: %v", des)
	}
}

func TestKeepDefaultAndOrder(t *testing.T) {
	s := openStore(t, 0)
	for _, seq := range []uint64{10, 9, 2, 11} { // 10 < 9 as strings: order is by number
		seal(t, s, "w", seq, tree{"f": "x"})
	}
	list, _ := s.List("w")
	if !reflect.DeepEqual(seqs(list), []uint64{10, 11}) {
		t.Fatalf("List = %v, want [10 11]", seqs(list))
	}
	// Sealing an older seq keeps it until the next seal.
	seal(t, s, "w", 3, tree{"f": "x"})
	if list, _ := s.List("w"); !reflect.DeepEqual(seqs(list), []uint64{3, 10, 11}) {
		t.Fatalf("List = %v, want [3 10 11]", seqs(list))
	}
	if _, err := OpenStore(t.TempDir(), -1); err == nil {
		t.Fatal("negative keep accepted")
	}
}

func TestOpenStoreRemovesStaging(t *testing.T) {
	s := openStore(t, 0)
	seal(t, s, "counter", 1, tree{"f": "x"})
	st, err := s.Stage("counter")
	must(t, err)
	writeTree(t, st.Dir, tree{"pages-1.img": "half written"})
	// The process dies here: no Seal, no Abort. A restart reopens the store.
	s2, err := OpenStore(s.Root(), 0)
	must(t, err)
	if _, err := os.Stat(st.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("leftover staging dir: %v", err)
	}
	list, err := s2.List("counter")
	if err != nil || !reflect.DeepEqual(seqs(list), []uint64{1}) {
		t.Fatalf("List = %v, %v", seqs(list), err)
	}
	if list, _ := s2.List(stagingName[1:]); len(list) != 0 {
		t.Fatalf("staging listed: %v", list)
	}
}

func TestListSkipsDamaged(t *testing.T) {
	s := openStore(t, 5)
	for seq := uint64(1); seq <= 4; seq++ {
		seal(t, s, "counter", seq, tree{"f": "x"})
	}
	damage := func(seq uint64, how func(p string)) {
		how(filepath.Join(s.Root(), "counter", string(rune('0'+seq)), manifestName))
	}
	damage(4, func(p string) { must(t, os.Truncate(p, 20)) })
	damage(2, func(p string) { must(t, os.WriteFile(p, []byte("garbage"), 0o600)) })
	damage(3, func(p string) { must(t, os.Remove(p)) })
	must(t, os.Mkdir(filepath.Join(s.Root(), "counter", "not-a-seq"), 0o700))
	must(t, os.Mkdir(filepath.Join(s.Root(), "counter", "007"), 0o700))
	list, err := s.List("counter")
	if err != nil || !reflect.DeepEqual(seqs(list), []uint64{1}) {
		t.Fatalf("List = %v, %v; want [1]", seqs(list), err)
	}
	latest, err := s.Latest("counter")
	if err != nil || latest.Manifest.Seq != 1 {
		t.Fatalf("Latest = %v, %v", latest, err)
	}
	_, err = s.Get("counter", 4)
	corruptAt(t, err, manifestName, -1, "unexpected EOF")
	if !errors.Is(err, ErrBadManifest) {
		t.Fatalf("a truncated manifest: %v, want ErrBadManifest too", err)
	}
	_, err = s.Get("counter", 3)
	corruptAt(t, err, manifestName, -1, "no such file")

	// A manifest moved to another seq's directory is not that seq.
	b, _ := os.ReadFile(filepath.Join(s.Root(), "counter", "1", manifestName))
	must(t, os.WriteFile(filepath.Join(s.Root(), "counter", "2", manifestName), b, 0o600))
	_, err = s.Get("counter", 2)
	corruptAt(t, err, manifestName, -1, "names counter#1")

	damage(1, func(p string) { must(t, os.WriteFile(p, nil, 0o600)) })
	if _, err := s.Latest("counter"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Latest with nothing valid: %v", err)
	}
}

func TestPruneRemovesOldDamaged(t *testing.T) {
	s := openStore(t, 5)
	for seq := uint64(1); seq <= 4; seq++ {
		seal(t, s, "w", seq, tree{"f": "x"})
	}
	must(t, os.Remove(filepath.Join(s.Root(), "w", "1", manifestName)))
	must(t, os.Remove(filepath.Join(s.Root(), "w", "4", manifestName)))
	must(t, s.Prune("w", 1)) // keeps 3, the newest that loads; 4 is newer, so it stays
	des, _ := os.ReadDir(filepath.Join(s.Root(), "w"))
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	if !reflect.DeepEqual(names, []string{"3", "4"}) {
		t.Fatalf("left %v, want [3 4]", names)
	}
}

func TestSealExists(t *testing.T) {
	s := openStore(t, 0)
	first := seal(t, s, "counter", 3, tree{"f": "first"})
	st, err := s.Stage("counter")
	must(t, err)
	writeTree(t, st.Dir, tree{"f": "second"})
	if _, err := s.Seal(st, info("counter", 3)); !errors.Is(err, ErrExists) {
		t.Fatalf("Seal of a sealed seq: %v", err)
	}
	must(t, s.Verify(first, first.Digest))
	again, err := s.Seal(st, info("counter", 4)) // the staging is still good
	must(t, err)
	must(t, s.Verify(again, again.Digest))
	must(t, st.Abort())
	if _, err := os.Stat(again.Dir); err != nil {
		t.Fatalf("Abort after Seal: %v", err)
	}

	st, err = s.Stage("counter")
	must(t, err)
	writeTree(t, st.Dir, tree{"f": "third"})
	if _, err := s.Seal(st, info("counter", 4)); !errors.Is(err, ErrExists) {
		t.Fatalf("Seal of a sealed seq: %v", err)
	}
	must(t, st.Abort())
	if _, err := os.Stat(st.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Abort left %s", st.Dir)
	}
}

func TestStagingLifecycle(t *testing.T) {
	s := openStore(t, 0)
	st, err := s.Stage("w")
	must(t, err)
	if fi, err := os.Stat(st.Dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("staging dir: %v %v", fi, err)
	}
	if _, err := s.Seal(st, Info{Workload: "other", Seq: 1, Mode: ModeApp}); err == nil {
		t.Fatal("sealed for another workload")
	}
	c, err := s.Seal(st, Info{Seq: 1, Mode: ModeApp}) // Workload from the staging
	must(t, err)
	if c.Manifest.Workload != "w" || c.Manifest.Mode != ModeApp || len(c.Manifest.Files) != 0 {
		t.Fatalf("manifest = %+v", c.Manifest)
	}
	must(t, st.Abort()) // after Seal: nothing
	if _, err := s.Get("w", 1); err != nil {
		t.Fatalf("Abort after Seal removed the checkpoint: %v", err)
	}
	if _, err := s.Seal(st, info("w", 2)); err == nil {
		t.Fatal("sealed twice")
	}
	other := openStore(t, 0)
	st2, _ := s.Stage("w")
	if _, err := other.Seal(st2, info("w", 2)); err == nil {
		t.Fatal("sealed into another store")
	}
	must(t, st2.Abort())
	if _, err := s.Seal(st2, info("w", 2)); err == nil {
		t.Fatal("sealed an aborted staging")
	}
}

func TestSealRejectsBadTree(t *testing.T) {
	s := openStore(t, 0)
	st, err := s.Stage("w")
	must(t, err)
	defer st.Abort()
	writeTree(t, st.Dir, tree{"f": "x"})
	must(t, os.Symlink("f", filepath.Join(st.Dir, "link")))
	if _, err := s.Seal(st, info("w", 1)); err == nil || !strings.Contains(err.Error(), "link: is a symlink") {
		t.Fatalf("Seal with a symlink: %v", err)
	}
	if list, _ := s.List("w"); len(list) != 0 {
		t.Fatalf("listed: %v", list)
	}
}

func TestModesAtRest(t *testing.T) {
	s := openStore(t, 0)
	st, err := s.Stage("w")
	must(t, err)
	writeTree(t, st.Dir, tree{"exec": "#!/bin/sh\n", "ro": "r", "locked/": "", "locked/none": "n", "open/": "", "open/x": ""})
	must(t, os.Chmod(filepath.Join(st.Dir, "exec"), 0o755))
	must(t, os.Chmod(filepath.Join(st.Dir, "ro"), 0o444))
	must(t, os.Chmod(filepath.Join(st.Dir, "locked/none"), 0))
	must(t, os.Chmod(filepath.Join(st.Dir, "locked"), 0o500))
	must(t, os.Chmod(filepath.Join(st.Dir, "open"), 0o777))
	c, err := s.Seal(st, info("w", 1))
	must(t, err)
	wantMode := map[string]uint32{"exec": 0o755, "ro": 0o444, "locked": ModeDir | 0o500, "locked/none": 0, "open": ModeDir | 0o777, "open/x": 0o644}
	for _, f := range c.Manifest.Files {
		if f.Mode != wantMode[f.Path] {
			t.Errorf("%s: manifest mode %#o, want %#o", f.Path, f.Mode, wantMode[f.Path])
		}
	}
	checkPrivate(t, s.Root())
	must(t, s.Verify(c, ""))
}

// checkPrivate walks root and fails on a file that is not 0600 or a
// directory that is not 0700.
func checkPrivate(t *testing.T, root string) {
	t.Helper()
	n := 0
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		want := os.FileMode(0o600)
		if fi.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
		n++
		return nil
	})
	must(t, err)
	if n < 10 {
		t.Fatalf("walked only %d entries", n)
	}
}

func TestWorkloadIDs(t *testing.T) {
	s := openStore(t, 0)
	for _, id := range []string{"", ".", "..", ".staging", ".hidden", "a/b", "a\\b", "a\x00b", strings.Repeat("x", 256), "\xff"} {
		if _, err := s.Stage(id); err == nil {
			t.Errorf("Stage(%q) accepted", id)
		}
		if _, err := s.List(id); err == nil {
			t.Errorf("List(%q) accepted", id)
		}
		if _, err := s.Get(id, 1); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q): %v", id, err)
		}
		if err := s.Remove(id, 1); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("Remove(%q): %v", id, err)
		}
	}
	for _, id := range []string{"counter", "a.b", "a-b_c", "x..y", strings.Repeat("x", 255)} {
		if err := ValidateWorkload(id); err != nil {
			t.Errorf("ValidateWorkload(%q): %v", id, err)
		}
	}
}

func TestNotFoundAndRemove(t *testing.T) {
	s := openStore(t, 0)
	if _, err := s.List("w"); err != nil {
		t.Fatalf("List of an unknown workload: %v", err)
	}
	if _, err := s.Latest("w"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Latest: %v", err)
	}
	if _, err := s.Get("w", 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get: %v", err)
	}
	if err := s.Remove("w", 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Remove: %v", err)
	}
	seal(t, s, "w", 1, tree{"f": "x"})
	c2 := seal(t, s, "w", 2, tree{"f": "y"})
	must(t, s.Remove("w", 2))
	if _, err := os.Stat(c2.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Remove left %s", c2.Dir)
	}
	if latest, err := s.Latest("w"); err != nil || latest.Manifest.Seq != 1 {
		t.Fatalf("Latest after Remove: %v, %v", latest, err)
	}
	if err := s.Remove("w", 2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Remove: %v", err)
	}
}

func TestOpenStoreErrors(t *testing.T) {
	if _, err := OpenStore("", 0); err == nil {
		t.Fatal("empty root accepted")
	}
	dir := t.TempDir()
	writeTree(t, dir, tree{"file": "x"})
	if _, err := OpenStore(filepath.Join(dir, "file"), 0); err == nil {
		t.Fatal("a file as root accepted")
	}
	s, err := OpenStore(filepath.Join(dir, "new", "root"), 0)
	must(t, err)
	if fi, err := os.Stat(s.Root()); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("root: %v %v", fi, err)
	}
}
