package transfer

import (
	"cmp"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// entry is one file or directory of a checkpoint tree on disk.
type entry struct {
	rel  string // slash-separated, relative to the tree's root
	dir  bool
	mode uint32 // permission bits as found, plus ModeDir for a directory
	size int64  // 0 for a directory
}

// walkTree lists the tree under root, sorted by path, as a manifest lists
// it: regular files and directories only. A symlink, device, socket or
// pipe is an error, so is a path a manifest cannot hold or more than
// MaxFiles entries. With private, every directory is made 0700 (before it
// is read) and every file 0600, after its mode is recorded.
func walkTree(root string, private bool) ([]entry, error) {
	fi, err := os.Lstat(root)
	if err != nil {
		return nil, errorf("", err, "%v", err)
	}
	if !fi.IsDir() {
		return nil, errorf("", nil, "is a %v, not a directory", typeName(fi.Mode()))
	}
	var list []entry
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		rel, relErr := filepath.Rel(root, p)
		if relErr != nil {
			return relErr
		}
		rel = filepath.ToSlash(rel)
		if err != nil {
			return errorf(rel, err, "%v", err)
		}
		if rel == "." {
			return chmodPrivate(p, private, 0o700)
		}
		e, err := visit(p, rel, d, private)
		if err != nil {
			return err
		}
		if list = append(list, e); len(list) > MaxFiles {
			return errorf(rel, nil, "more than %d files", MaxFiles)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(list, func(a, b entry) int { return cmp.Compare(a.rel, b.rel) })
	return list, nil
}

// visit records one entry of the walk, and makes it private if asked.
func visit(p, rel string, d fs.DirEntry, private bool) (entry, error) {
	if err := validatePath(rel); err != nil {
		return entry{}, errorf(rel, err, "%v", err)
	}
	if t := d.Type(); !t.IsDir() && !t.IsRegular() {
		return entry{}, errorf(rel, nil, "is a %s: only regular files and directories may be in a checkpoint", typeName(t))
	}
	fi, err := d.Info()
	if err != nil {
		return entry{}, errorf(rel, err, "%v", err)
	}
	e := entry{rel: rel, dir: fi.IsDir(), mode: uint32(fi.Mode().Perm())}
	if e.dir {
		e.mode |= ModeDir
		return e, chmodPrivate(p, private, 0o700)
	}
	e.size = fi.Size()
	return e, chmodPrivate(p, private, 0o600)
}

// chmodPrivate sets mode on p when private is set.
func chmodPrivate(p string, private bool, mode os.FileMode) error {
	if !private {
		return nil
	}
	return os.Chmod(p, mode)
}

// typeName names the type of a file mode for an error message.
func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m.IsDir():
		return "directory"
	case m.IsRegular():
		return "regular file"
	}
	return "special file"
}
